// At most N routing-table entries per IP address (libtorrent's dht_restrict_routing_ips: one per
// IP). Stock k-rpc adds every node that queries us or answers us — even an unsolicited "response"
// — so one host with 64 source ports and 64 made-up node ids took 64 places in the table, the
// contacts every lookup and every reply to others starts from (measured: 9 → 91 nodes).
//
// Loopback addresses are exempt unless asked otherwise: only processes on this host can send from
// them, and that is how the tests, the demo and the benchmarks build a DHT (every node on
// 127.0.0.1, told apart by port).
import type DHT from 'bittorrent-dht';
import { patchable, patchableObject } from './patch.js';

// `any` is the honest type for the untyped library internals this file patches or drives (biome.json turns noExplicitAny off here).
type Contact = { id: Uint8Array; host: string; port: number };

export interface RoutingLimitOptions {
  /** Entries per IP address; 0 = no limit. */
  maxNodesPerIp: number;
  /** Count loopback addresses too (tests of the limit itself). */
  limitLoopback?: boolean;
}

export function isLoopback(host: string): boolean {
  return host.startsWith('127.') || host === '::1' || host.startsWith('::ffff:127.');
}

/** Rejected contacts, process-wide (status / tests). */
export const routingLimitStats = { rejected: 0 };

export function limitNodesPerIp(dht: DHT, opts: RoutingLimitOptions): void {
  const max = opts.maxNodesPerIp;
  if (!max) return;
  const rpc = patchableObject(dht, '_rpc', 'bittorrent-dht DHT');
  const kb = patchableObject(rpc, 'nodes', 'k-rpc RPC');
  const add = patchable(kb, 'add', 'k-bucket KBucket').bind(kb);
  const get = patchable(kb, 'get', 'k-bucket KBucket').bind(kb);
  patchable(kb, 'on', 'k-bucket KBucket');
  const addNode = patchable(rpc, '_addNode', 'k-rpc RPC').bind(rpc);
  const counted = (host: string) => !(isLoopback(host) && !opts.limitLoopback);

  // Entries per host, kept from k-bucket's own events (contacts leave by remove() and by the
  // arbiter replacing one contact with another of the same id).
  const perHost = new Map<string, number>();
  const inc = (c: Contact) => perHost.set(c.host, (perHost.get(c.host) ?? 0) + 1);
  const dec = (c: Contact) => {
    const n = (perHost.get(c.host) ?? 0) - 1;
    if (n > 0) perHost.set(c.host, n);
    else perHost.delete(c.host);
  };
  for (const c of kb.toArray() as Contact[]) inc(c);
  kb.on('added', inc);
  kb.on('removed', dec);
  kb.on('updated', (oldC: Contact, newC: Contact) => {
    dec(oldC);
    inc(newC);
  });

  /** May this contact enter (or move within) the table? */
  const admissible = (c: Contact): boolean => {
    if (!c || typeof c.host !== 'string' || !counted(c.host)) return true;
    const incumbent = c.id instanceof Uint8Array ? (get(c.id) as Contact | null) : null;
    if (incumbent && incumbent.host === c.host) return true; // a known node seen again (maybe on a new port)
    if ((perHost.get(c.host) ?? 0) < max) return true;
    routingLimitStats.rejected++;
    return false;
  };
  // Every way into the table goes through KBucket.add (k-rpc's _addNode, the ping swap, DHT.addNode);
  // _addNode is wrapped too so a refused contact is not announced as a new 'node'. Refusing before
  // add() also means a full bucket never pings its members on behalf of a refused contact.
  kb.add = (c: Contact) => (admissible(c) ? add(c) : kb);
  rpc._addNode = (c: Contact) => {
    if (admissible(c)) addNode(c);
  };
}
