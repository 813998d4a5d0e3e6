// Media archiving end to end: events with imeta tags, a kind-1063 file event and a Blossom URL
// go through the real plugin (driven as strfry drives it) into the real sidecar, which fetches the
// blobs from a real HTTP media server on loopback, verifies them and seeds them; an independent
// libtorrent peer downloads each by infohash alone (magnet: no web seed, so the bytes come from
// the sidecar), byte for byte. A blob whose bytes do not hash to what the event states is refused
// and counted; a restart keeps the media index; a NIP-09 deletion of the only event referencing
// a blob unseeds and deletes it, while a blob another event still references stays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StrfryHarness } from './testkit/strfry-harness.js';
import { makeWorkspace, SidecarProcess, PLUGIN_BIN } from './testkit/sidecar-process.js';
import { mediaServer } from './testkit/media-server.js';
import { ltFetch } from './testkit/libtorrent.js';
import { signer, pluginLine } from './testkit/events.js';
import { blobPath, mediaRoot } from '../sidecar/media/blob-store.js';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';
import type { Status } from '../sidecar/ops/status.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const T0 = Math.floor(Date.now() / 1000) - 600;

async function metricsOf(dataDir: string): Promise<string> {
  const rt = JSON.parse(readFileSync(join(dataDir, 'sidecar.json'), 'utf8')) as { status: string };
  return (await fetch(`http://${rt.status}/metrics`)).text();
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  assert.ok(line, `metric ${name} present`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** libtorrent fetches a blob by infohash from the sidecar alone; returns its bytes (or null if it could not). */
async function fromSwarm(infoHash: string, peerPort: number, save: string, timeoutSec = 30): Promise<Buffer | null> {
  const res = await ltFetch({ magnet: `magnet:?xt=urn:btih:${infoHash}`, save, peerPort, timeoutSec });
  if (!res.ok) return null;
  return readFileSync(join(save, res.files[0]!));
}

test('media: imeta, kind 1063 and Blossom blobs are fetched, verified, seeded, survive a restart and leave with their events', {
  timeout: 240_000,
}, async () => {
  const server = await mediaServer();
  const ws = makeWorkspace({ media: { enabled: true, allowLoopback: true }, bundle: { rewriteIntervalSeconds: 1 } });
  const save = mkdtempSync(join(tmpdir(), 'nostr-bt-media-lt-'));
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  let h: StrfryHarness | null = null;
  try {
    const [alice, bob, carol] = await Promise.all([signer(), signer(), signer()]);
    const bytesA = randomBytes(300_000);
    const bytesB = randomBytes(200_000);
    const bytesC = randomBytes(150_000);
    const shaA = server.add(bytesA, 'image/png');
    const shaB = server.add(bytesB, 'video/mp4');
    const shaC = server.add(bytesC, 'image/jpeg');
    // The server has these bytes, but the event states another hash.
    const served = randomBytes(50_000);
    const servedSha = server.add(served, 'image/png');
    const statedWrong = sha(randomBytes(50_000));

    const noteA = alice.sign({
      kind: 1,
      created_at: T0,
      content: 'a picture',
      tags: [['imeta', `url ${server.url(shaA, '.png')}`, `x ${shaA}`, 'm image/png', `size ${bytesA.length}`]],
    });
    const fileB = bob.sign({
      kind: 1063,
      created_at: T0,
      content: 'a video',
      tags: [
        ['url', server.url(shaB)],
        ['x', shaB],
        ['m', 'video/mp4'],
        ['size', String(bytesB.length)],
      ],
    });
    const noteC = carol.sign({ kind: 1, created_at: T0, content: `look ${server.url(shaC, '.jpg')}.` });
    // Alice references C too: deleting this note must not remove C, which Carol's note still references.
    const noteAC = alice.sign({ kind: 1, created_at: T0 + 1, content: `same as carol: ${server.url(shaC, '.jpg')}` });
    const wrong = bob.sign({
      kind: 1,
      created_at: T0 + 1,
      content: 'lies',
      tags: [['imeta', `url ${server.url(servedSha)}`, `x ${statedWrong}`]],
    });

    await sidecar.start();
    h = new StrfryHarness(PLUGIN_BIN, { env: { ...process.env, NOSTR_BT_CONFIG: ws.configPath }, timeoutMs: 10_000 });
    const send = async (events: NostrEvent[]) => {
      for (const e of events) {
        const r = await h!.send(pluginLine(e), e.id).catch((err: Error) => assert.fail(`${err.message}\n${h!.stderr}`));
        assert.equal(r.reply.action, 'accept');
      }
    };
    await send([noteA, fileB, noteC, noteAC, wrong]);
    const s1 = await sidecar.waitFor((s) => (s.media?.seeded ?? 0) === 3 && (s.media?.queue.failures['hash-mismatch'] ?? 0) === 1, 60_000);
    const m1 = s1.media!;
    assert.equal(m1.blobs, 3);
    assert.equal(m1.bytes, bytesA.length + bytesB.length + bytesC.length);
    assert.equal(m1.references, 4, 'A, B, C by Carol, C by Alice; nothing for the refused blob');
    assert.equal(existsSync(blobPath(mediaRoot(ws.dataDir), statedWrong)), false, 'the wrong bytes were not kept');
    assert.equal(existsSync(blobPath(mediaRoot(ws.dataDir), servedSha)), false);
    const metrics = await metricsOf(ws.dataDir);
    assert.equal(metric(metrics, 'nostr_bt_media_seeded'), 3);
    assert.equal(metric(metrics, 'nostr_bt_media_blobs'), 3);
    assert.match(metrics, /^nostr_bt_media_refused_total\{reason="hash-mismatch"\} 1$/m);
    assert.equal(server.hits.get(`/${shaC}.jpg`), 1, 'a blob two events reference is fetched once');

    // Each blob from the swarm, by infohash only: the bytes come from the sidecar, not the origin.
    const infoHashes = new Map<string, string>();
    const sentBefore = server.blobBytesSent;
    for (const [s, bytes] of [
      [shaA, bytesA],
      [shaB, bytesB],
      [shaC, bytesC],
    ] as const) {
      const torrentPath = blobPath(mediaRoot(ws.dataDir), s) + '.torrent';
      const torrent = readFileSync(torrentPath);
      const ih = createHash('sha1').update(infoDictOf(torrent)).digest('hex');
      infoHashes.set(s, ih);
      assert.ok(torrent.includes(Buffer.from(`8:url-list`)), 'the origin URL is the web seed');
      const got = await fromSwarm(ih, s1.seeding!.port, join(save, s));
      assert.ok(got, `libtorrent downloaded ${s} from the sidecar`);
      assert.equal(sha(got), s, 'sha256-verified');
      assert.ok(got.equals(bytes), 'byte-identical');
    }
    assert.equal(server.blobBytesSent, sentBefore, 'nothing was fetched from the origin meanwhile');

    // Restart: the index keeps the blobs and their references; nothing is fetched again.
    const hitsBefore = [...server.hits.values()].reduce((a, b) => a + b, 0);
    await h.close();
    h = null;
    assert.equal(await sidecar.stop(), 0);
    await sidecar.start();
    const s2 = await sidecar.waitFor((s) => (s.media?.seeded ?? 0) === 3);
    assert.equal(s2.media!.references, 4);
    assert.equal(s2.media!.blobs, 3);
    assert.equal(
      [...server.hits.values()].reduce((a, b) => a + b, 0),
      hitsBefore,
      'nothing fetched again after the restart',
    );

    // NIP-09: Alice deletes both her notes. A (only hers) leaves the swarm and the disk; C stays.
    h = new StrfryHarness(PLUGIN_BIN, { env: { ...process.env, NOSTR_BT_CONFIG: ws.configPath }, timeoutMs: 10_000 });
    await send([
      alice.sign({
        kind: 5,
        created_at: T0 + 10,
        tags: [
          ['e', noteA.id],
          ['e', noteAC.id],
        ],
      }),
    ]);
    const s3: Status = await sidecar.waitFor((s) => s.media?.blobs === 2, 30_000);
    assert.equal(s3.media!.seeded, 2);
    assert.equal(s3.media!.references, 2);
    assert.equal(s3.media!.removed, 1);
    assert.equal(existsSync(blobPath(mediaRoot(ws.dataDir), shaA)), false, 'the blob is deleted');
    assert.equal(existsSync(blobPath(mediaRoot(ws.dataDir), shaA) + '.torrent'), false, 'and its torrent');
    assert.equal(existsSync(blobPath(mediaRoot(ws.dataDir), shaC)), true, 'the shared blob stays');
    assert.equal(
      await fromSwarm(infoHashes.get(shaA)!, s3.seeding!.port, join(save, 'gone'), 4),
      null,
      'the deleted blob is no longer seeded',
    );
    const c = await fromSwarm(infoHashes.get(shaC)!, s3.seeding!.port, join(save, 'c-again'));
    assert.ok(c?.equals(bytesC), 'the shared blob is still seeded');
  } finally {
    await h?.close();
    await sidecar.kill9();
    await server.close();
    ws.cleanup();
    rmSync(save, { recursive: true, force: true });
  }
});

/** The bencoded info dict of a torrent written as `d4:info<info>...e` (as blob-store.ts writes it). */
function infoDictOf(torrent: Buffer): Buffer {
  assert.equal(torrent.subarray(0, 7).toString(), 'd4:info');
  const end = torrent.indexOf('8:url-list');
  return torrent.subarray(7, end > 0 ? end : torrent.length - 1);
}
