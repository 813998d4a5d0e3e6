// An iterative Kademlia lookup with BEP-44 `get` queries, sent through bittorrent-dht's own k-rpc
// (so replies still feed its routing table and its per-node pacing applies). It replaces
// bittorrent-dht's lookup for puts, which queries until the 20 closest nodes answered, with many
// queries in parallel, and then puts to all 20: ~50 packets per item (measured, docs/protocol.md §7).
// Here: at most `alpha` queries in flight among the `k` closest candidates, and the lookup ends as
// soon as the `k` closest known nodes have all answered with a write token.
import type DHT from 'bittorrent-dht';

export interface Contact {
  id: Buffer;
  host: string;
  port: number;
}

export interface Reached extends Contact {
  token: Buffer;
}

type QueryCb = (err: (Error & { code?: unknown }) | null, res: { r?: Record<string, unknown> } | null) => void;

/** The k-rpc instance inside a bittorrent-dht node. */
export interface Rpc {
  id: Buffer;
  query(node: Contact, message: { q: string; a: Record<string, unknown> }, cb: QueryCb): void;
  nodes: { closest(id: Buffer, n: number): Contact[]; count(): number };
}

export function rpcOf(dht: DHT): Rpc {
  return (dht as unknown as { _rpc: Rpc })._rpc;
}

export interface LookupOptions {
  /** Nodes to find (and to put to). */
  k: number;
  /** Queries in flight among the k closest candidates. */
  alpha: number;
  /** Where to start: recorded closest nodes of an earlier put, or the routing table's closest. */
  seeds: Contact[];
  /** Bound on queries for one lookup. */
  maxQueries: number;
  /**
   * A node we should not query now (its packets would wait in our per-node pacer): up to
   * `maxSkips` such nodes are passed over for the next closest, so one node that many targets
   * share does not hold every put back (and is not pushed past its packet limit).
   */
  busy?: (c: Contact) => boolean;
  maxSkips?: number;
  /**
   * More starting points, taken once if the seeds and the nodes they name run out before k nodes
   * answered (a republish whose recorded nodes left: their neighbours still list them), then
   * queried `moreAlpha` at a time.
   */
  more?: () => Contact[];
  moreAlpha?: number;
  /**
   * BEP-44 `seq` in the get: a node holding an item with this seq or lower leaves `v` out of its
   * reply (libtorrent does; ~1 KB saved per node on a republish).
   */
  seq?: number;
  /** Sends through the per-node pacer: `send(true)` once a packet may go to `c` (false: closed). */
  via?: (c: Contact, send: (open: boolean) => void) => void;
  /** Sees every reply (with its token, if any); `false` ends the lookup now (a read that has its answer). */
  onReply?: (c: Contact, r: Record<string, unknown>) => boolean | undefined;
}

export interface LookupResult {
  /** The closest nodes that answered with a write token, closest first (at most k). */
  reached: Reached[];
  queries: number;
}

const ID_BYTES = 20;
const CONTACT_BYTES = ID_BYTES + 6;
/** Contacts read from one reply (a reply to `get` carries 8; more is a hostile or broken node). */
const MAX_CONTACTS_PER_REPLY = 16;
/** BEP-5/44 tokens are short (libtorrent 4 bytes, bittorrent-dht 20); a long one would bloat our put. */
const MAX_TOKEN_BYTES = 64;

type State = 'new' | 'pending' | 'ok' | 'failed';
interface Candidate {
  contact: Contact;
  dist: Buffer;
  state: State;
  token: Buffer | null;
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(ID_BYTES);
  for (let i = 0; i < ID_BYTES; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Compact node info (BEP-5: 20-byte id, 4-byte IPv4, 2-byte port), bounded and validated. */
export function parseContacts(buf: unknown, max = MAX_CONTACTS_PER_REPLY): Contact[] {
  if (!(buf instanceof Uint8Array)) return [];
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Contact[] = [];
  for (let i = 0; i + CONTACT_BYTES <= b.length && out.length < max; i += CONTACT_BYTES) {
    const port = b.readUInt16BE(i + ID_BYTES + 4);
    if (port === 0) continue;
    out.push({ id: Buffer.from(b.subarray(i, i + ID_BYTES)), host: `${b[i + 20]}.${b[i + 21]}.${b[i + 22]}.${b[i + 23]}`, port });
  }
  return out;
}

export function encodeContacts(contacts: Contact[]): Buffer {
  const out = Buffer.alloc(contacts.length * CONTACT_BYTES);
  contacts.forEach((c, n) => {
    const at = n * CONTACT_BYTES;
    c.id.copy(out, at, 0, ID_BYTES);
    const ip = c.host.split('.').map(Number);
    for (let j = 0; j < 4; j++) out[at + ID_BYTES + j] = ip[j]! & 0xff;
    out.writeUInt16BE(c.port, at + ID_BYTES + 4);
  });
  return out;
}

function isIpv4(host: string): boolean {
  const parts = host.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

export function lookupClosest(rpc: Rpc, target: Buffer, opts: LookupOptions): Promise<LookupResult> {
  return new Promise((resolve) => {
    const cands = new Map<string, Candidate>();
    let sorted: Candidate[] = [];
    let queries = 0;
    let skips = 0;
    let alpha = opts.alpha;
    let more = opts.more;
    let finished = false;
    const message = { q: 'get', a: opts.seq === undefined ? { id: rpc.id, target } : { id: rpc.id, target, seq: opts.seq } };

    const add = (c: Contact) => {
      if (!(c.id instanceof Uint8Array) || c.id.length !== ID_BYTES || !isIpv4(c.host) || !(c.port > 0 && c.port < 65536)) return;
      const id = Buffer.from(c.id);
      if (id.equals(rpc.id)) return;
      const key = id.toString('hex');
      if (cands.has(key)) return;
      const cand: Candidate = { contact: { id, host: c.host, port: c.port }, dist: xor(id, target), state: 'new', token: null };
      cands.set(key, cand);
      // Insert in distance order (candidate lists stay short: k + a few replies' worth).
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (Buffer.compare(sorted[mid]!.dist, cand.dist) < 0) lo = mid + 1;
        else hi = mid;
      }
      sorted.splice(lo, 0, cand);
    };

    const finish = () => {
      if (finished) return;
      finished = true;
      const reached: Reached[] = [];
      for (const c of sorted) {
        if (reached.length >= opts.k) break;
        if (c.state === 'ok' && c.token) reached.push({ ...c.contact, token: c.token });
      }
      resolve({ reached, queries });
    };

    const step = () => {
      if (finished) return;
      // Nodes that failed (or gave no usable token) drop out; the next closest take their place.
      if (sorted.some((c) => c.state === 'failed')) sorted = sorted.filter((c) => c.state !== 'failed');
      const top = sorted.slice(0, opts.k);
      let pending = 0;
      for (const c of top) if (c.state === 'pending') pending++;
      for (const c of top) {
        if (pending >= alpha || queries >= opts.maxQueries) break;
        if (c.state !== 'new') continue;
        if (opts.busy && skips < (opts.maxSkips ?? 0) && opts.busy(c.contact)) {
          skips++;
          c.state = 'failed';
          return step();
        }
        c.state = 'pending';
        pending++;
        queries++;
        send(c);
      }
      if (pending > 0) return;
      if (more && queries < opts.maxQueries && top.filter((c) => c.state === 'ok').length < opts.k) {
        const extra = more();
        more = undefined;
        alpha = opts.moreAlpha ?? alpha;
        for (const c of extra) add(c);
        return step();
      }
      finish();
    };

    const send = (c: Candidate) => {
      let answered = false;
      const done: QueryCb = (err, res) => {
        if (answered) return;
        answered = true;
        const r = res?.r;
        if (err || !r) c.state = 'failed';
        else {
          const token = r['token'];
          if (token instanceof Uint8Array && token.length > 0 && token.length <= MAX_TOKEN_BYTES) {
            c.state = 'ok';
            c.token = Buffer.from(token);
          } else c.state = 'failed';
          if (!finished) for (const n of parseContacts(r['nodes'])) add(n);
          if (!finished && opts.onReply?.(c.contact, r) === false) return finish();
        }
        step();
      };
      const issue = (open: boolean) => {
        if (!open) return done(new Error('DHT node closed'), null);
        try {
          rpc.query(c.contact, message, done);
        } catch (err) {
          // A closed socket (the node is shutting down): this candidate failed.
          setImmediate(() => done(err as Error, null));
        }
      };
      if (opts.via) opts.via(c.contact, issue);
      else issue(true);
    };

    for (const s of opts.seeds) add(s);
    step();
  });
}
