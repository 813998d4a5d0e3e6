// Disk full under the index and the bundles (a small tmpfs, grown while the sidecar runs): ingest
// stops with a clear error and a metric, the plugin still answers, what is seeded stays seeded,
// ingest resumes by itself when space returns, and the index is intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'smol-toml';
import { StrfryHarness } from './testkit/strfry-harness.js';
import { mountSmallDisk, unmountSmallDisk } from './testkit/small-disk.js';
import { makeWorkspace, SidecarProcess, PLUGIN_BIN, LOOPBACK_DEFAULTS } from './testkit/sidecar-process.js';
import { unsignedEvent, pluginLine, pubkeyN, contentOf } from './testkit/events.js';
import { ltFetch } from './testkit/libtorrent.js';
import { Store } from '../sidecar/index/store.js';
import { dataPathOf, torrentPathOf } from '../sidecar/bundles/builder.js';

function makeEvents(n: number, bytes: number, seed: number): { lines: string[]; ids: string[] } {
  const lines: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const e = unsignedEvent(pubkeyN((seed + i) % 23), {
      kind: 1,
      created_at: 1_700_000_000 + seed + i,
      content: contentOf(bytes, seed + i),
    });
    lines.push(pluginLine(e));
    ids.push(e.id);
  }
  return { lines, ids };
}

test('disk full: ingest stops with a clear error and a metric, seeding goes on, ingest resumes by itself when space returns; index intact', {
  timeout: 120_000,
}, async (t) => {
  const ws = makeWorkspace();
  const mnt = mountSmallDisk(ws.dir, 8);
  if (!mnt) {
    ws.cleanup();
    t.skip('SKIPPED: needs to mount a small tmpfs (root with CAP_SYS_ADMIN) to fill a disk for real');
    return;
  }
  const dataDir = join(mnt, 'data');
  writeFileSync(
    ws.configPath,
    stringify({
      ...LOOPBACK_DEFAULTS,
      dataDir,
      spool: { dir: join(ws.dir, 'spool') }, // strfry's side has room
      bundle: { windowSeconds: 1 },
      dht: { enabled: false },
    }),
  );
  const sidecar = new SidecarProcess(ws.configPath, dataDir);
  // "At once": well within strfry's 10 s, though the first answer includes the plugin's start-up.
  const h = new StrfryHarness(PLUGIN_BIN, { env: { ...process.env, NOSTR_BT_CONFIG: ws.configPath }, timeoutMs: 5000 });
  const save = mkdtempSync(join(tmpdir(), 'nostr-bt-lt-'));
  const first = makeEvents(300, 1500, 0);
  const flood = makeEvents(500, 20_000, 1000); // ~10 MB for an 8 MB disk
  const ids = [...first.ids, ...flood.ids];
  const send = async (ev: { lines: string[]; ids: string[] }) => {
    for (let i = 0; i < ev.lines.length; i++)
      assert.equal((await h.send(ev.lines[i]!, ev.ids[i]!)).reply.action, 'accept', 'strfry is answered at once');
  };
  try {
    await sidecar.start();
    await send(first);
    const seeded = await sidecar.waitFor((s) => s.bundles?.events === 300 && s.bundles.pendingEvents === 0, 20_000);
    const bundleA = seeded.bundles!.newest!;

    await send(flood);
    const stalled = await sidecar.waitFor((s) => typeof s.ingest?.error === 'string', 30_000);
    assert.ok(stalled.events.stored < ids.length, 'the disk filled up');
    assert.match(stalled.ingest!.error!, /free on the disk of/, `the error says why: ${stalled.ingest!.error}`);
    const runtime = JSON.parse(readFileSync(join(dataDir, 'sidecar.json'), 'utf8')) as { status: string };
    assert.equal((await fetch(`http://${runtime.status}/healthz`)).status, 503);
    assert.match(await (await fetch(`http://${runtime.status}/metrics`)).text(), /^nostr_bt_ingest_stalled 1$/m);
    assert.match(sidecar.stderr, /index commit failed \(.*free on the disk of.*\); ingest paused/);

    // Still seeding what it has: an independent peer downloads the first bundle now.
    const res = await ltFetch({
      torrent: torrentPathOf(join(dataDir, 'bundles'), bundleA),
      save,
      peerPort: stalled.seeding!.port,
      timeoutSec: 20,
    });
    assert.ok(res.ok, `bundle downloaded while the disk is full: ${JSON.stringify(res)}`);

    // Space returns (the operator grows the volume): ingest resumes without a restart.
    execFileSync('mount', ['-o', 'remount,size=128m', mnt]);
    const resumed = await sidecar.waitFor((s) => s.events.stored === ids.length && s.ingest?.error === null, 60_000);
    assert.equal(resumed.events.indexed, ids.length, 'each event indexed once');
    assert.equal((await fetch(`http://${runtime.status}/healthz`)).status, 200);
    assert.match(await (await fetch(`http://${runtime.status}/metrics`)).text(), /^nostr_bt_ingest_stalled 0$/m);
    await sidecar.waitFor((s) => s.bundles?.events === ids.length && s.bundles.pendingEvents === 0, 30_000);
    assert.equal(h.restarts, 1, 'the plugin never failed');
    await h.close();
    assert.equal(await sidecar.stop(), 0);

    // The index is intact: every event readable and placed in a bundle whose data holds it.
    const store = Store.open(join(dataDir, 'index'), { readOnly: true });
    try {
      assert.equal(store.eventCount(), ids.length);
      assert.equal(store.counts().indexed, ids.length);
      const data = new Map<string, string>();
      for (const id of ids) {
        const rec = store.getEvent(id);
        assert.ok(rec && (JSON.parse(rec.j) as { id: string }).id === id, `${id} readable`);
        const loc = store.locate(id);
        assert.ok(loc, `${id} in a bundle`);
        if (!data.has(loc.ih)) data.set(loc.ih, readFileSync(dataPathOf(join(dataDir, 'bundles'), loc.ih), 'utf8'));
        assert.ok(data.get(loc.ih)!.includes(rec.j + '\n'), `${id} in its bundle's data`);
      }
    } finally {
      await store.close();
    }
  } finally {
    await h.close();
    await sidecar.kill9();
    unmountSmallDisk(mnt);
    rmSync(save, { recursive: true, force: true });
    ws.cleanup();
  }
});
