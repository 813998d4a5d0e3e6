// A WebTorrent client that finds no peer by itself: no DHT of its own (a test sets `client.dht` to
// a node of its local DHT, or adds peers by hand), no tracker, local discovery, PEX, NAT mapping,
// web seeds or uTP. So it talks only to the loopback peers a test, bench or the demo hands it.
import WebTorrent, { type ClientOptions } from 'webtorrent';

export const QUIET_WEBTORRENT = {
  dht: false,
  tracker: false,
  lsd: false,
  utPex: false,
  natUpnp: false,
  natPmp: false,
  webSeeds: false,
  utp: false,
} as const;

/** `new WebTorrent` with QUIET_WEBTORRENT (`extra`, e.g. torrentPort, on top). */
export function quietWebTorrent(extra: ClientOptions = {}): WebTorrent {
  return new WebTorrent({ ...QUIET_WEBTORRENT, ...extra });
}
