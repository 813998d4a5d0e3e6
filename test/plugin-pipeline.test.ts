// The plugin driven exactly as strfry drives it, with the real sidecar as a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StrfryHarness } from './testkit/strfry-harness.js';
import { makeWorkspace, SidecarProcess, PLUGIN_BIN, FIXTURES, sleep } from './testkit/sidecar-process.js';
import { unsignedEvent, pluginLine, pubkeyN, contentOf } from './testkit/events.js';
import { Store } from '../sidecar/index/store.js';

const fixtureLines = () => readFileSync(join(FIXTURES, 'strfry-plugin-input.jsonl'), 'utf8').trim().split('\n');
const idOf = (line: string) => (JSON.parse(line) as { event: { id: string } }).event.id;

function harnessFor(configPath: string, timeoutMs = 10_000): StrfryHarness {
  return new StrfryHarness(PLUGIN_BIN, { env: { ...process.env, NOSTR_BT_CONFIG: configPath }, timeoutMs });
}

async function storedIds(dataDir: string): Promise<Set<string>> {
  const store = Store.open(join(dataDir, 'index'), { readOnly: true });
  try {
    return new Set(store.eventIds());
  } finally {
    await store.close();
  }
}

test('fixtures end to end: strfry → plugin → sidecar → index', async () => {
  const ws = makeWorkspace();
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  const h = harnessFor(ws.configPath);
  try {
    await sidecar.start();
    for (const line of fixtureLines()) {
      const { reply } = await h.send(line, idOf(line));
      assert.equal(reply.action, 'accept');
    }
    await sidecar.waitFor((s) => s.events.received === 15);
    const exitInfo = await h.close();
    assert.ok(exitInfo.exitedByItself, 'plugin exits by itself when stdin closes');
    assert.equal(await sidecar.stop(), 0);
    const ids = await storedIds(ws.dataDir);
    const expired = Date.now() / 1000 > 1795467942;
    const expected = readFileSync(join(FIXTURES, 'strfry-export.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; kind: number; tags: string[][] })
      .filter((e) => !(e.kind >= 20000 && e.kind < 30000))
      .filter((e) => !(expired && e.tags.some((t) => t[0] === 'expiration')))
      .map((e) => e.id);
    assert.deepEqual([...ids].sort(), expected.sort());
    assert.equal(h.warnings.length, 0, 'nothing but replies on stdout');
  } finally {
    await h.close();
    await sidecar.kill9();
    ws.cleanup();
  }
});

test('sidecar down, then up: every event answered at once, spooled, then drained; nothing lost', async () => {
  const ws = makeWorkspace();
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  // "At once": well within strfry's 10 s, though the first answer includes the plugin's start-up.
  const h = harnessFor(ws.configPath, 5000);
  const events = Array.from({ length: 2000 }, (_, i) =>
    unsignedEvent(pubkeyN(i % 50), { kind: 1, created_at: 1_700_000_000 + i, content: contentOf(300, i) }),
  );
  try {
    for (const e of events.slice(0, 1000)) assert.equal((await h.send(pluginLine(e), e.id)).reply.action, 'accept');
    const spoolDir = join(ws.dataDir, 'spool');
    const spooledFiles = () => (existsSync(spoolDir) ? readdirSync(spoolDir) : []);
    for (let i = 0; i < 200 && spooledFiles().length === 0; i++) await sleep(50);
    assert.ok(spooledFiles().length >= 1, 'lines went to the spool while the sidecar was down');
    await sidecar.start();
    for (const e of events.slice(1000)) assert.equal((await h.send(pluginLine(e), e.id)).reply.action, 'accept');
    const s = await sidecar.waitFor((st) => st.events.stored === 2000 && st.spool.files === 0);
    assert.equal(s.events.indexed, 2000);
    assert.equal(h.restarts, 1, 'the plugin never failed');
  } finally {
    await h.close();
    await sidecar.kill9();
    ws.cleanup();
  }
});

test('kill -9 of the sidecar mid-stream of 50k events: all indexed exactly once after restart', { timeout: 180_000 }, async () => {
  const ws = makeWorkspace();
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  const h = harnessFor(ws.configPath);
  const N = 50_000;
  const lines: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < N; i++) {
    const e = unsignedEvent(pubkeyN(i % 500), { kind: 1, created_at: 1_700_000_000 + i, content: contentOf(200, i) });
    lines.push(pluginLine(e));
    ids.push(e.id);
  }
  try {
    await sidecar.start();
    let restarting: Promise<void> | null = null;
    for (let i = 0; i < N; i++) {
      if (i === 15_000 || i === 35_000) {
        // The first restart must be up before the second kill: a kill during start() fails it.
        await restarting;
        await sidecar.kill9();
        restarting = sleep(200).then(() => sidecar.start());
      }
      const { reply } = await h.send(lines[i]!, ids[i]!);
      assert.equal(reply.action, 'accept');
    }
    await restarting;
    const s = await sidecar.waitFor((st) => st.events.stored === N && st.spool.files === 0, 60_000);
    assert.equal(s.events.indexed, N, 'each event indexed exactly once');
    assert.equal(h.restarts, 1, 'the plugin never failed or restarted');
    await h.close();
    await sidecar.stop();
    const stored = await storedIds(ws.dataDir);
    assert.equal(stored.size, N);
    for (const id of ids) assert.ok(stored.has(id));
  } finally {
    await h.close();
    await sidecar.kill9();
    ws.cleanup();
  }
});

test('inner plugin: verdicts pass through unchanged; only accepted events are forwarded', async () => {
  const ws0 = makeWorkspace();
  const inner = join(ws0.dir, 'inner.mjs');
  writeFileSync(
    inner,
    `import { createInterface } from 'node:readline';
createInterface({ input: process.stdin }).on('line', (l) => {
  const { event } = JSON.parse(l);
  let out = { id: event.id, action: 'accept' };
  if (event.content === 'reject me') out = { id: event.id, action: 'reject', msg: 'blocked: by inner policy' };
  if (event.content === 'shadow me') out = { id: event.id, action: 'shadowReject' };
  if (event.content === 'crash me') process.exit(3);
  if (event.content === 'hang me') return;
  process.stdout.write(JSON.stringify(out) + '\\n');
});`,
  );
  ws0.cleanup;
  // The inner timeout also bounds the inner plugin's first answer after each (re)start, node's
  // start-up included (over 500 ms with every core busy): 'hang me' never answers at all.
  const INNER_TIMEOUT_MS = 4000;
  const ws = makeWorkspace({
    plugin: {
      inner: `node ${inner}`,
      innerTimeoutMs: INNER_TIMEOUT_MS,
      innerFailMode: 'reject',
      innerFailMessage: 'error: policy unavailable',
    },
  });
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  const h = harnessFor(ws.configPath, 30_000);
  const pk = pubkeyN(7);
  const ev = (content: string, i: number) => unsignedEvent(pk, { kind: 1, created_at: 1_700_000_000 + i, content });
  try {
    await sidecar.start();
    const ok1 = ev('fine', 1);
    const rej = ev('reject me', 2);
    const shadow = ev('shadow me', 3);
    const crash = ev('crash me', 4);
    const ok2 = ev('fine again', 5);
    const hang = ev('hang me', 6);
    const ok3 = ev('fine at last', 7);
    assert.deepEqual((await h.send(pluginLine(ok1), ok1.id)).reply, { id: ok1.id, action: 'accept' });
    assert.deepEqual((await h.send(pluginLine(rej), rej.id)).reply, { id: rej.id, action: 'reject', msg: 'blocked: by inner policy' });
    assert.deepEqual((await h.send(pluginLine(shadow), shadow.id)).reply, { id: shadow.id, action: 'shadowReject' });
    assert.deepEqual((await h.send(pluginLine(crash), crash.id)).reply, {
      id: crash.id,
      action: 'reject',
      msg: 'error: policy unavailable',
    });
    assert.deepEqual((await h.send(pluginLine(ok2), ok2.id)).reply, { id: ok2.id, action: 'accept' }, 'inner restarted');
    const t0 = Date.now();
    assert.deepEqual((await h.send(pluginLine(hang), hang.id)).reply, { id: hang.id, action: 'reject', msg: 'error: policy unavailable' });
    const hungMs = Date.now() - t0;
    assert.ok(
      hungMs >= INNER_TIMEOUT_MS - 10 && hungMs < INNER_TIMEOUT_MS + 4000,
      `a hanging inner plugin costs its timeout, no more (${hungMs} ms)`,
    );
    assert.deepEqual((await h.send(pluginLine(ok3), ok3.id)).reply, { id: ok3.id, action: 'accept' });
    await sidecar.waitFor((s) => s.events.received === 3);
    await h.close();
    await sidecar.stop();
    assert.deepEqual([...(await storedIds(ws.dataDir))].sort(), [ok1.id, ok2.id, ok3.id].sort());
    assert.equal(h.restarts, 1);
  } finally {
    await h.close();
    await sidecar.kill9();
    ws.cleanup();
    ws0.cleanup();
  }
});

test('sourceType filter: only configured sources are forwarded', async () => {
  const ws = makeWorkspace({ plugin: { forwardSourceTypes: ['IP4', 'IP6'] } });
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  const h = harnessFor(ws.configPath);
  const a = unsignedEvent(pubkeyN(1), { kind: 1, created_at: 1, content: 'from a client' });
  const b = unsignedEvent(pubkeyN(1), { kind: 1, created_at: 2, content: 'from a stream' });
  try {
    await sidecar.start();
    await h.send(pluginLine(a, { sourceType: 'IP6', sourceInfo: '::1' }), a.id);
    assert.equal((await h.send(pluginLine(b, { sourceType: 'Stream', sourceInfo: 'wss://x' }), b.id)).reply.action, 'accept');
    await sidecar.waitFor((s) => s.events.received === 1);
    await h.close();
    await sidecar.stop();
    assert.deepEqual([...(await storedIds(ws.dataDir))], [a.id]);
  } finally {
    await h.close();
    await sidecar.kill9();
    ws.cleanup();
  }
});

// With no plugin.inner, a broken config accepts instead: test/plugin-config-error.test.ts.
test('invalid config wrapping an inner plugin: the plugin still answers every event (reject), and says why on stderr', async () => {
  const ws = makeWorkspace();
  writeFileSync(ws.configPath, '[plugin]\ninner = "/bin/cat"\ninnerFailMode = "maybe"\n');
  const h = harnessFor(ws.configPath);
  const e = unsignedEvent(pubkeyN(1), { kind: 1, created_at: 1, content: 'x' });
  try {
    const { reply } = await h.send(pluginLine(e), e.id);
    assert.equal(reply.action, 'reject');
    assert.match(h.stderr, /plugin\.innerFailMode/);
  } finally {
    await h.close();
    ws.cleanup();
  }
});
