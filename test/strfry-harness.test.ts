import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginError, StrfryHarness } from './testkit/strfry-harness.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'strfry-harness-test-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Writes a throwaway plugin script and returns the shell command that runs it. */
function plugin(name: string, body: string): string {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, body);
  return `'${process.execPath}' '${file}'`;
}

/** A line-by-line plugin: `handler` gets the parsed request and returns the reply text to print. */
function linePlugin(name: string, handler: string, extra = ''): string {
  return plugin(
    name,
    `import { createInterface } from 'node:readline';
${extra}
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const req = JSON.parse(line);
  const out = (${handler})(req);
  if (out !== undefined) process.stdout.write(out);
});
`,
  );
}

const ACCEPT = `(req) => JSON.stringify({ id: req.event.id, action: 'accept' }) + '\\n'`;

function ev(id: string, extra: Record<string, unknown> = {}) {
  return { id, kind: 1, content: 'hi', created_at: 1700000000, pubkey: 'a'.repeat(64), sig: 'b'.repeat(128), tags: [], ...extra };
}

/** Non-zombie processes in process group `pgid` (Linux /proc; [] elsewhere). */
function liveGroupMembers(pgid: number): number[] {
  if (!existsSync('/proc/self/stat')) return [];
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state ppid pgrp ...
    if (Number(f[2]) === pgid && f[0] !== 'Z' && f[0] !== 'X') out.push(Number(name));
  }
  return out;
}

async function rejectsWith(p: Promise<unknown>, kind: PluginError['kind']): Promise<PluginError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof PluginError, `expected PluginError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    return e;
  }
  assert.fail(`expected PluginError ${kind}`);
}

test('accept-all plugin answers, with latency; started lazily', async () => {
  const h = new StrfryHarness(linePlugin('accept', ACCEPT));
  try {
    assert.equal(h.pid, undefined);
    assert.equal(h.restarts, 0);
    const { reply, latencyNs } = await h.sendEvent(ev('e1'));
    assert.deepEqual(reply, { id: 'e1', action: 'accept' });
    assert.equal(typeof latencyNs, 'bigint');
    assert.ok(latencyNs > 0n && latencyNs < 30_000_000_000n); // the first includes the plugin's start
    assert.equal(typeof h.pid, 'number');
    const r2 = await h.send(JSON.stringify({ event: { id: 'e2' }, type: 'new' }), 'e2');
    assert.equal(r2.reply.id, 'e2');
    assert.equal(h.restarts, 1);
    assert.deepEqual(h.warnings, []);
  } finally {
    await h.close();
  }
});

test('sendEvent formats the input line like strfry (sorted keys, minified)', async () => {
  const h = new StrfryHarness(
    linePlugin('echo', `(req) => JSON.stringify({ id: req.event.id, action: 'reject', msg: JSON.stringify(req) }) + '\\n'`),
  );
  // Capture the raw line instead of the re-serialised one: have the plugin echo it verbatim.
  const raw = new StrfryHarness(
    plugin(
      'raw-echo',
      `import { createInterface } from 'node:readline';
createInterface({ input: process.stdin }).on('line', (line) => {
  process.stdout.write(JSON.stringify({ id: JSON.parse(line).event.id, action: 'accept', msg: line }) + '\\n');
});`,
    ),
  );
  try {
    const event = { tags: [['t', 'x']], sig: 's', pubkey: 'p', kind: 1, id: 'e1', created_at: 5, content: 'ünï ✓ 🎉' };
    const before = Math.floor(Date.now() / 1000);
    const { reply } = await raw.sendEvent(event);
    const line = reply.msg!;
    const m = /"receivedAt":(\d+),/.exec(line);
    assert.ok(m);
    const receivedAt = Number(m[1]);
    assert.ok(receivedAt >= before && receivedAt <= before + 2);
    assert.equal(
      line,
      '{"event":{"content":"ünï ✓ 🎉","created_at":5,"id":"e1","kind":1,"pubkey":"p","sig":"s","tags":[["t","x"]]},' +
        `"receivedAt":${receivedAt},"sourceInfo":"127.0.0.1","sourceType":"IP4","type":"new"}`,
    );
    const r2 = await raw.sendEvent(event, { sourceType: 'IP6', sourceInfo: '::1', authed: 'ab' });
    assert.match(r2.reply.msg!, /^\{"authed":"ab","event":\{"content":/);
    assert.match(r2.reply.msg!, /"sourceInfo":"::1","sourceType":"IP6","type":"new"\}$/);

    const r3 = await h.sendEvent(ev('e3'), { sourceType: 'Stream', sourceInfo: 'ws://x' });
    assert.equal(r3.reply.action, 'reject');
    assert.deepEqual(Object.keys(JSON.parse(r3.reply.msg!)), ['event', 'receivedAt', 'sourceInfo', 'sourceType', 'type']);
  } finally {
    await raw.close();
    await h.close();
  }
});

test('wrong id -> PluginError wrong-id, plugin killed, next send restarts it', async () => {
  const h = new StrfryHarness(
    linePlugin('wrong-id', `(req) => JSON.stringify({ id: req.event.id === 'bad' ? 'nope' : req.event.id, action: 'accept' }) + '\\n'`),
  );
  try {
    await h.sendEvent(ev('ok1'));
    const firstPid = h.pid;
    const err = await rejectsWith(h.sendEvent(ev('bad')), 'wrong-id');
    assert.match(err.line ?? '', /nope/);
    assert.equal(h.pid, undefined);
    assert.equal(h.restarts, 1);
    const { reply } = await h.sendEvent(ev('ok2'));
    assert.equal(reply.id, 'ok2');
    assert.equal(h.restarts, 2);
    assert.notEqual(h.pid, firstPid);
  } finally {
    await h.close();
  }
});

test('missing field and unknown action are plugin errors', async () => {
  const h = new StrfryHarness(
    linePlugin(
      'fields',
      `(req) => {
  const id = req.event.id;
  if (id === 'noaction') return JSON.stringify({ id }) + '\\n';
  if (id === 'noid') return JSON.stringify({ action: 'accept' }) + '\\n';
  if (id === 'array') return '[1,2]\\n';
  if (id === 'badaction') return JSON.stringify({ id, action: 'maybe' }) + '\\n';
  return JSON.stringify({ id, action: 'shadowReject' }) + '\\n';
}`,
    ),
  );
  try {
    await rejectsWith(h.sendEvent(ev('noaction')), 'missing-field');
    await rejectsWith(h.sendEvent(ev('noid')), 'missing-field');
    await rejectsWith(h.sendEvent(ev('array')), 'missing-field');
    await rejectsWith(h.sendEvent(ev('badaction')), 'bad-action');
    const { reply } = await h.sendEvent(ev('fine'));
    assert.equal(reply.action, 'shadowReject');
    assert.equal(h.restarts, 5);
  } finally {
    await h.close();
  }
});

test('a reply line over 8192 bytes -> bad-action', async () => {
  const h = new StrfryHarness(
    linePlugin(
      'long',
      `(req) => JSON.stringify({ id: req.event.id, action: 'reject', msg: 'x'.repeat(req.event.id === 'long' ? 9000 : 8000) }) + '\\n'`,
    ),
  );
  try {
    const ok = await h.sendEvent(ev('short'));
    assert.equal(ok.reply.msg?.length, 8000);
    await rejectsWith(h.sendEvent(ev('long')), 'bad-action');
  } finally {
    await h.close();
  }
});

test('plugin that sleeps -> timeout, then restarts', { timeout: 60_000 }, async () => {
  // The timeout also bounds the restarted plugin's first answer (node's start-up included, which
  // takes over 300 ms with every core busy): 'slow' never answers, 'fast' needs well under 5 s.
  const TIMEOUT_MS = 5000;
  const h = new StrfryHarness(
    linePlugin('sleep', `(req) => req.event.id === 'slow' ? undefined : JSON.stringify({ id: req.event.id, action: 'accept' }) + '\\n'`),
    { timeoutMs: TIMEOUT_MS },
  );
  try {
    const t0 = Date.now();
    await rejectsWith(h.sendEvent(ev('slow')), 'timeout');
    const dt = Date.now() - t0;
    assert.ok(dt >= TIMEOUT_MS - 10 && dt < TIMEOUT_MS + 3000, `timeout after ${dt} ms`);
    assert.equal((await h.sendEvent(ev('fast'))).reply.action, 'accept');
    assert.equal(h.restarts, 2);
    // the (re-armed) timer fires again for a later request
    await rejectsWith(h.sendEvent(ev('slow')), 'timeout');
    assert.equal(h.restarts, 2);
  } finally {
    await h.close();
  }
});

test('plugin that exits -> exit (stderr collected), next send restarts', async () => {
  const h = new StrfryHarness(
    linePlugin(
      'exit',
      `(req) => { if (req.event.id === 'die') { process.stderr.write('dying now\\n'); process.exit(3); } return JSON.stringify({ id: req.event.id, action: 'accept' }) + '\\n'; }`,
    ),
  );
  try {
    await rejectsWith(h.sendEvent(ev('die')), 'exit');
    assert.equal(h.pid, undefined);
    assert.equal((await h.sendEvent(ev('alive'))).reply.id, 'alive');
    assert.equal(h.restarts, 2);
    // stderr of the dead plugin is kept
    for (let i = 0; i < 200 && !h.stderr.includes('dying now'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(h.stderr, /dying now/);
  } finally {
    await h.close();
  }
});

test('plugin that died while idle: the next send fails with exit (as in strfry), the one after restarts', async () => {
  const h = new StrfryHarness(
    linePlugin(
      'idle-exit',
      `(req) => { setTimeout(() => process.exit(0), 20); return JSON.stringify({ id: req.event.id, action: 'accept' }) + '\\n'; }`,
    ),
  );
  try {
    await h.sendEvent(ev('a'));
    const pid = h.pid!;
    // Until it has exited (a fixed wait is too short on a busy machine).
    for (let i = 0; i < 400 && liveGroupMembers(pid).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(liveGroupMembers(pid), [], 'the plugin exited while idle');
    await rejectsWith(h.sendEvent(ev('b')), 'exit');
    assert.equal((await h.sendEvent(ev('c'))).reply.id, 'c');
    assert.equal(h.restarts, 2);
  } finally {
    await h.close();
  }
});

test('a command that cannot run -> exit, no crash on EPIPE', async () => {
  const h = new StrfryHarness(join(dir, 'does-not-exist'));
  try {
    await rejectsWith(h.sendEvent(ev('x')), 'exit');
    await rejectsWith(h.sendEvent(ev('y')), 'exit');
    assert.equal(h.restarts, 2);
    assert.match(h.stderr, /not found|No such file/);
  } finally {
    await h.close();
  }
});

test('a plugin file that is not executable -> exit, and the error says so (a tsc-only build)', async () => {
  const file = join(dir, 'not-executable.mjs');
  writeFileSync(file, '#!/usr/bin/env node\n', { mode: 0o644 });
  const h = new StrfryHarness(file);
  try {
    const a = h.sendEvent(ev('x'));
    const b = h.sendEvent(ev('y'));
    await assert.rejects(
      a,
      (err: unknown) =>
        err instanceof PluginError && err.kind === 'exit' && /not-executable\.mjs is not executable.*npm run build/.test(err.message),
    );
    await rejectsWith(b, 'exit');
    assert.equal(h.restarts, 0, 'nothing was spawned');
    chmodSync(file, 0o755);
    writeFileSync(
      file,
      `#!${process.execPath}\nimport { createInterface } from 'node:readline';\ncreateInterface({ input: process.stdin }).on('line', (l) => console.log(JSON.stringify({ id: JSON.parse(l).event.id, action: 'accept' })));\n`,
    );
    assert.equal((await h.sendEvent(ev('z'))).reply.action, 'accept', 'once executable it runs');
  } finally {
    await h.close();
  }
});

test('non-JSON stdout line -> warning recorded, real reply still used', async () => {
  const h = new StrfryHarness(
    linePlugin(
      'chatty',
      `(req) => 'hello, not json\\n' + JSON.stringify({ id: req.event.id, action: 'reject', msg: 'blocked: test' }) + '\\n'`,
    ),
  );
  try {
    const { reply } = await h.sendEvent(ev('e1'));
    assert.deepEqual(reply, { id: 'e1', action: 'reject', msg: 'blocked: test' });
    assert.deepEqual(h.warnings, ['hello, not json']);
    assert.equal(h.restarts, 1);
  } finally {
    await h.close();
  }
});

test('reply split across chunks and multi-byte characters is reassembled', async () => {
  const h = new StrfryHarness(
    plugin(
      'split',
      `import { createInterface } from 'node:readline';
createInterface({ input: process.stdin }).on('line', (line) => {
  const id = JSON.parse(line).event.id;
  const buf = Buffer.from(JSON.stringify({ id, action: 'reject', msg: 'ünïcødé 🎉' }) + '\\n');
  const cut = buf.indexOf(0xf0) + 2; // in the middle of the emoji
  process.stdout.write(buf.subarray(0, cut));
  setTimeout(() => process.stdout.write(buf.subarray(cut)), 30);
});`,
    ),
  );
  try {
    const { reply } = await h.sendEvent(ev('e1'));
    assert.equal(reply.msg, 'ünïcødé 🎉');
  } finally {
    await h.close();
  }
});

test('concurrent sends are queued: one request outstanding at a time, in order', async () => {
  const h = new StrfryHarness(
    linePlugin(
      'serial',
      `(req) => {
  if (globalThis.busy) throw new Error('overlap');
  globalThis.busy = true;
  setTimeout(() => { globalThis.busy = false; process.stdout.write(JSON.stringify({ id: req.event.id, action: 'accept' }) + '\\n'); }, 1);
  return undefined;
}`,
    ),
  );
  try {
    const ids = Array.from({ length: 200 }, (_, i) => `q${i}`);
    const results = await Promise.all(ids.map((id) => h.sendEvent(ev(id))));
    assert.deepEqual(
      results.map((r) => r.reply.id),
      ids,
    );
    assert.equal(h.restarts, 1);
  } finally {
    await h.close();
  }
});

test('an error mid-queue rejects only that request; queued ones go to the restarted plugin', async () => {
  const h = new StrfryHarness(
    linePlugin('mid', `(req) => JSON.stringify({ id: req.event.id === 'q5' ? 'other' : req.event.id, action: 'accept' }) + '\\n'`),
  );
  try {
    const ps = Array.from({ length: 10 }, (_, i) => h.sendEvent(ev(`q${i}`)));
    const settled = await Promise.allSettled(ps);
    settled.forEach((s, i) => void assert.equal(s.status, i === 5 ? 'rejected' : 'fulfilled', `q${i}`));
    assert.equal(h.restarts, 2);
  } finally {
    await h.close();
  }
});

test('an unsolicited line is read as the reply to the next request (like strfry)', async () => {
  const h = new StrfryHarness(
    plugin(
      'unsolicited',
      `import { createInterface } from 'node:readline';
process.stdout.write(JSON.stringify({ id: 'early', action: 'accept' }) + '\\n');
createInterface({ input: process.stdin }).on('line', (line) => {
  process.stdout.write(JSON.stringify({ id: JSON.parse(line).event.id, action: 'accept' }) + '\\n');
});`,
    ),
  );
  try {
    assert.equal((await h.sendEvent(ev('early'))).reply.id, 'early');
    await new Promise((r) => setTimeout(r, 50)); // the real reply to 'early' now sits in the backlog
    await rejectsWith(h.sendEvent(ev('next')), 'wrong-id');
  } finally {
    await h.close();
  }
});

test('close() on a plugin that exits when stdin ends -> exitedByItself', async () => {
  const h = new StrfryHarness(linePlugin('closer', ACCEPT));
  await h.sendEvent(ev('e1'));
  const t0 = Date.now();
  const res = await h.close(20_000);
  assert.deepEqual(res, { code: 0, signal: null, exitedByItself: true });
  assert.ok(Date.now() - t0 < 15_000, 'well before the close timeout');
  assert.equal(h.pid, undefined);
  // a never-started harness closes trivially
  assert.equal((await new StrfryHarness('true').close()).exitedByItself, true);
});

test('close() on a plugin that ignores stdin end -> SIGKILL, exitedByItself false', async () => {
  const h = new StrfryHarness(linePlugin('stubborn', ACCEPT, `setInterval(() => {}, 1000); process.stdin.on('end', () => {});`));
  await h.sendEvent(ev('e1'));
  const pid = h.pid!;
  const t0 = Date.now();
  const res = await h.close(300);
  const dt = Date.now() - t0;
  assert.equal(res.exitedByItself, false);
  assert.equal(res.signal, 'SIGKILL');
  assert.ok(dt >= 290 && dt < 6000, `close took ${dt} ms`); // 300 ms, then SIGKILL (the exit waited for ≤ 5 s)
  // The whole group is gone. (Zombies may linger where PID 1 does not reap orphans.)
  // SIGKILL is delivered asynchronously: give the kernel a moment to tear the grandchild down.
  for (let i = 0; i < 200 && liveGroupMembers(pid).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(liveGroupMembers(pid), []);
});
