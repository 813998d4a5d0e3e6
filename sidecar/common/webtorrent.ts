// WebTorrent as nostr-bt runs it, the two internals the seeder patches (Peer, ConnPool), and the
// bittorrent-tracker server the gateway's WebRTC tracker runs.
// The package ships webtorrent bundled (dist/vendor/webtorrent.js, built by
// scripts/vendor-webtorrent.ts from the dependency tree this project installs and tests):
// webtorrent 3's own dependency tree cannot be installed from the npm registry by a consumer
// (ip-set 3's preinstall refuses npm; node-datachannel 0.32 downloads its binary from GitHub),
// and a consumer's npm ignores this project's `overrides`. Without that build step (a checkout
// built with tsc alone) node_modules/webtorrent is used, the same code.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type WebTorrentClient from 'webtorrent';
import type { Server as BittorrentTrackerServer } from 'bittorrent-tracker';
import type { PatchOwner } from './monkey-patch.js';

export type { Torrent, TorrentFile, Wire } from 'webtorrent';

interface Internals {
  WebTorrent: typeof WebTorrentClient;
  Peer: { prototype: { onConnect(this: { conn?: { setNoDelay?: (v: boolean) => void } }): void } };
  ConnPool: { prototype: { _onConnection(conn: unknown, type: string): void } };
  TrackerServer: typeof BittorrentTrackerServer;
}

const VENDORED = new URL('../../vendor/webtorrent.js', import.meta.url);

async function load(): Promise<Internals> {
  if (existsSync(fileURLToPath(VENDORED))) {
    const m = (await import(VENDORED.href)) as {
      default: Internals['WebTorrent'];
      Peer: Internals['Peer'];
      ConnPool: Internals['ConnPool'];
      TrackerServer: Internals['TrackerServer'];
    };
    return { WebTorrent: m.default, Peer: m.Peer, ConnPool: m.ConnPool, TrackerServer: m.TrackerServer };
  }
  const [w, p, c, t] = await Promise.all([
    import('webtorrent'),
    import('webtorrent/lib/peer.js'),
    import('webtorrent/lib/conn-pool.js'),
    import('bittorrent-tracker'),
  ]);
  return { WebTorrent: w.default, Peer: p.default as Internals['Peer'], ConnPool: c.default, TrackerServer: t.Server };
}

const internals = await load();

const WebTorrent = internals.WebTorrent;
type WebTorrent = WebTorrentClient;
export default WebTorrent;
export const Peer = internals.Peer;
export const ConnPool = internals.ConnPool;
export const TrackerServer = internals.TrackerServer;

/** Whose members tcp-no-delay and peer-limits patch, with webtorrent's own version (bundled, it has no package.json). */
export function webtorrentOwner(object: string): PatchOwner {
  return { pkg: 'webtorrent', object, version: String((WebTorrent as unknown as { VERSION?: unknown }).VERSION ?? 'unknown') };
}
