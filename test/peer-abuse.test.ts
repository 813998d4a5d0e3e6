// Misbehaving BitTorrent peers against the real sidecar (child process): connections that never
// handshake, and peers that request everything and never read. Connections and memory stay
// bounded, and an honest peer (libtorrent) still downloads the bundle meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import bencode from 'bencode';
import { torrentPathOf } from '../sidecar/bundles/builder.js';
import { makeWorkspace, SidecarProcess } from './testkit/sidecar-process.js';
import { unsignedEvent, pluginLine, pubkeyN, contentOf } from './testkit/events.js';
import { sendLines } from './testkit/ingest-client.js';
import { idleConnections, inetSockets, rssKb, slowReader } from './testkit/hostile-peer.js';
import { ltFetch } from './testkit/libtorrent.js';

const MAX_CONNS = 16;

/**
 * TCP connections the sidecar holds on its torrent port (accepted peers; the listener itself
 * left out). Counted by port, not as all its sockets before and after: the status requests of
 * `waitFor` leave keep-alive HTTP connections that close on their own timer, which made the
 * difference one more than the peers on a busy machine.
 */
const peerConnections = (pid: number, port: number) =>
  inetSockets(pid).filter((s) => s.proto.startsWith('tcp') && s.port === port && s.state !== '0A').length;

test('hostile peers: never-handshaking floods and request-everything slow readers keep connections and memory bounded; an honest peer still downloads', {
  timeout: 90_000,
}, async () => {
  const ws = makeWorkspace({ bittorrent: { maxConns: MAX_CONNS }, dht: { enabled: false }, bundle: { windowSeconds: 3 } });
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  const save = mkdtempSync(join(tmpdir(), 'nostr-bt-lt-'));
  const hostile: Socket[] = [];
  try {
    await sidecar.start();
    const N = 1500;
    const lines = Array.from({ length: N }, (_, i) =>
      pluginLine(unsignedEvent(pubkeyN(i % 60), { kind: 1, created_at: 1_700_000_000 + i, content: contentOf(2000, i) })),
    );
    assert.equal(await sendLines(sidecar.socketPath, lines), N);
    const s = await sidecar.waitFor((st) => st.bundles?.events === N && st.bundles.pendingEvents === 0, 30_000);
    const ih = s.bundles!.newest!;
    const port = s.seeding!.port;
    const torrentFile = torrentPathOf(join(ws.dataDir, 'bundles'), ih);
    const info = (bencode.decode(readFileSync(torrentFile)) as { info: { 'piece length': number; files: { length: number }[] } }).info;
    const t = { pieceLength: info['piece length'], length: info.files.reduce((n, f) => n + f.length, 0) };
    const pid = sidecar.proc!.pid!;

    const peersBefore = peerConnections(pid, port);
    assert.equal(peersBefore, 0, 'no peer yet');
    const rssBefore = rssKb(pid);
    // 1. A flood of connections that never send a handshake.
    hostile.push(...(await idleConnections(port, 10 * MAX_CONNS)));
    const peersFlooded = peerConnections(pid, port);
    assert.ok(peersFlooded <= MAX_CONNS, `at most ${MAX_CONNS} peer connections held (${peersFlooded})`);

    // 2. Peers that request every block again and again and never read (each takes the place
    //    of a connection still waiting for its handshake).
    const readers = [];
    for (let i = 0; i < 2; i++) readers.push(await slowReader(port, ih, t, { requests: 20_000 }));
    for (const r of readers) hostile.push(r.socket);
    assert.ok(
      readers.every((r) => r.unchoked),
      'the slow readers were unchoked, so their requests were served',
    );
    assert.ok(
      readers.every((r) => r.requested > 2000),
      `requests were sent (${readers.map((r) => r.requested)})`,
    );
    await new Promise((r) => setTimeout(r, 1500));
    const grewMb = (rssKb(pid) - rssBefore) / 1024;
    // Unbounded, two such peers made the sidecar hold ~1 GB within the same time.
    assert.ok(grewMb < 120, `sidecar memory bounded under slow readers (+${grewMb.toFixed(0)} MB)`);
    assert.ok(peerConnections(pid, port) <= MAX_CONNS, `still at most maxConns peer connections (${peerConnections(pid, port)})`);

    // 3. Meanwhile an honest peer downloads the whole bundle (pieces verified by libtorrent).
    const res = await ltFetch({ torrent: torrentFile, save, peerPort: port, timeoutSec: 30 });
    assert.ok(res.ok, `libtorrent completed the download while hostile peers were connected: ${JSON.stringify(res)}`);
    assert.equal(res.infoHash, ih);
    const after = await sidecar.status();
    assert.equal(after.sidecar, 'up');
    assert.equal(after.events.stored, N);
  } finally {
    for (const s of hostile) s.destroy();
    await sidecar.kill9();
    rmSync(save, { recursive: true, force: true });
    ws.cleanup();
  }
});
