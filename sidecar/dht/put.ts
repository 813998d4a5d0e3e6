// Puts signed BEP-44 mutable items on the k closest DHT nodes (k = 8, BEP-5's bucket size, as
// libtorrent does), with as few packets as the DHT allows:
// - a first put looks the k closest nodes up from the routing table (dht/lookup.ts), then puts;
// - a republish starts its lookup at the nodes that stored the item last time (kept in memory):
//   if they still are the closest, that is k `get`s (for fresh write tokens) and k `put`s; nodes
//   that left are replaced by the closer ones their neighbours name, and if those fall short of
//   k, by further nodes from the routing table;
// - every query waits for a free slot in the per-node pacer (dht/harden.ts) before it is sent,
//   and a node with a backlog there is passed over for the next closest.
import type DHT from 'bittorrent-dht';
import { encodeContacts, lookupClosest, parseContacts, rpcOf, type Contact, type LookupResult, type Reached, type Rpc } from './lookup.js';
import { targetOf } from '../formats/pointer-item.js';
import { pacerOf } from './harden.js';

export interface SignedItem {
  k: Buffer;
  salt: Buffer;
  seq: number;
  sig: Buffer;
  v: unknown;
}

export interface PutOutcome {
  /** Nodes that stored the item or already held it (error 302: their seq is not older). */
  stored: number;
  /** Those nodes, closest first. */
  holders: Contact[];
  /** Nodes that answered the lookup with a write token (the put went to these). */
  reached: number;
  /** DHT queries sent (gets and puts). */
  queries: number;
  /** The lookup started at the nodes recorded at the last put. */
  reusedRoute: boolean;
  error: string | null;
}

export interface PutterOptions {
  /** Nodes to store each item on. */
  k?: number;
  /** Lookup queries in flight for a first put. */
  alpha?: number;
  /** Items whose closest nodes are remembered (least recently put forgotten first). */
  maxRoutes?: number;
}

const MAX_LOOKUP_QUERIES = 64;
/**
 * A node whose next packet would wait longer than this in our pacer is passed over: a full
 * window (5 packets in the last 1.1 s) waits up to 1.1 s, beyond that packets queue, and on a
 * small DHT a node close to many targets would hold back every put that touches it.
 */
const BUSY_MS = 1200;

export class ItemPutter {
  private readonly k: number;
  private readonly alpha: number;
  private readonly maxRoutes: number;
  /** Target (hex) → compact contacts (latin1 string; ~40 MB of heap for 100,000 items) of the nodes that stored it. */
  private readonly routes = new Map<string, string>();

  constructor(
    private readonly dht: DHT,
    opts: PutterOptions = {},
  ) {
    this.k = opts.k ?? 8;
    this.alpha = opts.alpha ?? 3;
    this.maxRoutes = opts.maxRoutes ?? 250_000;
  }

  async put(item: SignedItem): Promise<PutOutcome> {
    const rpc = rpcOf(this.dht);
    const target = targetOf(item.k, item.salt);
    const key = target.toString('hex');
    const pacer = pacerOf(this.dht);
    const busy = pacer ? (c: Contact) => pacer.delayMs(c.host, c.port) > BUSY_MS : undefined;
    const via = pacer ? (c: Contact, send: (open: boolean) => void) => pacer.whenFree(c.host, c.port, send) : undefined;
    const maxSkips = Math.floor(this.k / 2);
    let queries = 0;
    const recorded = this.routes.get(key);
    const fromTable = () => rpc.nodes.closest(target, this.k);
    // When the nodes found fall short of k (gone, or passed over as busy, while their neighbours
    // still list them): further nodes from the routing table, so the next closest show up.
    const moreFromTable = () => rpc.nodes.closest(target, this.k * 3);
    const common = { k: this.k, maxQueries: MAX_LOOKUP_QUERIES, busy, maxSkips, via, seq: item.seq };
    // A republish asks all recorded nodes at once (they are expected to be the closest still),
    // and only goes back to the routing table if they and the nodes they name fall short.
    const reusedRoute = recorded !== undefined;
    const seeds = reusedRoute ? parseContacts(Buffer.from(recorded, 'latin1'), this.k) : fromTable();
    const found: LookupResult | null =
      seeds.length === 0
        ? null
        : reusedRoute
          ? await lookupClosest(rpc, target, { ...common, alpha: this.k, seeds, more: moreFromTable, moreAlpha: this.alpha })
          : await lookupClosest(rpc, target, { ...common, alpha: this.alpha, seeds, more: moreFromTable });
    queries += found?.queries ?? 0;
    if (found === null || found.reached.length === 0) {
      return {
        stored: 0,
        holders: [],
        reached: 0,
        queries,
        reusedRoute,
        error: found === null ? 'no DHT nodes reachable' : 'no DHT node answered the lookup',
      };
    }
    const acks = await Promise.all(found.reached.map((node) => putOne(rpc, node, item, via)));
    queries += found.reached.length;
    const holders: Contact[] = [];
    let lastError: string | null = null;
    acks.forEach((a, i) => {
      if (a === null) holders.push(found!.reached[i]!);
      else lastError = a;
    });
    if (holders.length > 0) this.remember(key, holders);
    else this.routes.delete(key);
    return {
      stored: holders.length,
      holders,
      reached: found.reached.length,
      queries,
      reusedRoute,
      error: holders.length > 0 ? null : (lastError ?? 'no node stored the item'),
    };
  }

  private remember(key: string, nodes: Contact[]): void {
    this.routes.delete(key);
    this.routes.set(key, encodeContacts(nodes).toString('latin1'));
    if (this.routes.size > this.maxRoutes) this.routes.delete(this.routes.keys().next().value!);
  }
}

/** One BEP-44 put; null when the node stored the item or already holds it (302), else the error. */
function putOne(
  rpc: Rpc,
  node: Reached,
  item: SignedItem,
  via?: (c: Contact, send: (open: boolean) => void) => void,
): Promise<string | null> {
  const a: Record<string, unknown> = { id: rpc.id, token: node.token, k: item.k, seq: item.seq, sig: item.sig, v: item.v };
  if (item.salt.length > 0) a['salt'] = item.salt;
  return new Promise((resolve) => {
    const issue = (open: boolean) => {
      if (!open) return resolve('DHT node closed');
      try {
        rpc.query(node, { q: 'put', a }, (err) => {
          if (!err) resolve(null);
          else resolve(err.code === 302 ? null : err.message || String(err.code));
        });
      } catch (err) {
        resolve((err as Error).message);
      }
    };
    if (via) via(node, issue);
    else issue(true);
  });
}
