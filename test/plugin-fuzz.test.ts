// 100k hostile input lines into the plugin: it never exits, never answers with a wrong id, and
// answers every line whose event id can be read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { makeWorkspace, PLUGIN_BIN } from './testkit/sidecar-process.js';
import { unsignedEvent, pluginLine, pubkeyN } from './testkit/events.js';
import { WRONG_SHAPES } from './testkit/hostile-lines.js';

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function hostileLines(n: number, seed: number): string[] {
  const rnd = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const valid = (i: number, size = 100) =>
    pluginLine(unsignedEvent(pubkeyN(i % 97), { kind: 1, created_at: 1_700_000_000 + i, content: 'v'.repeat(size) }));
  const garbage = (len: number) => {
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) {
      let c = Math.floor(rnd() * 256);
      if (c === 10 || c === 13) c = 32; // keep one input line per generated line
      b[i] = c;
    }
    return b.toString('latin1');
  };
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (r < 0.25) lines.push(valid(i));
    else if (r < 0.45) {
      const v = valid(i);
      lines.push(v.slice(0, Math.floor(rnd() * v.length)));
    } else if (r < 0.6) lines.push(garbage(1 + Math.floor(rnd() * 300)));
    else if (r < 0.7) lines.push(pick([...WRONG_SHAPES, '', ' ']));
    else if (r < 0.75) lines.push('{"event":' + '['.repeat(1 + Math.floor(rnd() * 20000)));
    else if (r < 0.85) lines.push(JSON.stringify({ event: { id: garbage(8), kind: 'one', tags: 'x' }, sourceType: 5 }));
    else lines.push(valid(i, 10 + Math.floor(rnd() * 2000)));
  }
  // A few huge lines (≥ 1 MB): valid ones must be answered, garbage must not hurt.
  lines.splice(100, 0, valid(1_000_001, 1_200_000));
  lines.splice(5000, 0, garbage(2_000_000));
  lines.splice(20000, 0, '{"event":{"content":"' + 'x'.repeat(5_000_000));
  return lines;
}

/** The id an independent reader gets from a line, if the line is a well-formed plugin request. */
function requiredId(line: string): string | null {
  try {
    const m = JSON.parse(line) as { event?: { id?: unknown } } | null;
    const id = m && typeof m === 'object' && m.event && typeof m.event === 'object' ? m.event.id : undefined;
    return typeof id === 'string' && id.length > 0 && id.length <= 256 ? id : null;
  } catch {
    return null;
  }
}

test('fuzz: 100k hostile lines, the plugin stays up and every readable id is answered once, in order', { timeout: 240_000 }, async () => {
  const ws = makeWorkspace();
  const lines = hostileLines(100_000, 42);
  const proc = spawn(process.execPath, [PLUGIN_BIN], {
    env: { ...process.env, NOSTR_BT_CONFIG: ws.configPath },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  proc.stderr.resume();
  const replies: { id: string; action: string }[] = [];
  let badReplies = 0;
  createInterface({ input: proc.stdout }).on('line', (l) => {
    try {
      replies.push(JSON.parse(l) as { id: string; action: string });
    } catch {
      badReplies++;
    }
  });
  let exitedEarly = false;
  proc.on('exit', () => (exitedEarly = true));
  let peakRssKb = 0;
  const rssTimer = setInterval(() => {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
      if (m) peakRssKb = Math.max(peakRssKb, Number(m[1]));
    } catch {
      /* gone */
    }
  }, 100);
  try {
    for (const l of lines) {
      if (!proc.stdin.write(l + '\n')) await new Promise((r) => proc.stdin.once('drain', r));
    }
    const required = lines.map(requiredId);
    const expectedMin = required.filter((x) => x !== null).length;
    const deadline = Date.now() + 60_000;
    while (replies.length < expectedMin && Date.now() < deadline && !exitedEarly) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(exitedEarly, false, 'the plugin never exits on bad input');
    assert.equal(badReplies, 0, 'stdout carries only JSON replies');
    // Walk inputs and replies together: required ids must match in order; any extra reply must
    // carry an id that literally appears in its own input line.
    let r = 0;
    for (let i = 0; i < lines.length; i++) {
      const need = required[i];
      const rep = replies[r];
      if (need !== null) {
        assert.ok(rep, `missing reply for line ${i}`);
        assert.equal(rep.id, need, `reply ${r} for line ${i} has the wrong id`);
        r++;
      } else if (rep && rep.id.length === 64 && lines[i]!.includes(`"id":"${rep.id}"`)) {
        assert.notEqual(rep.action, 'accept', 'an unreadable line is never accepted');
        r++;
      }
    }
    assert.equal(r, replies.length, 'no reply without a matching input line');
    assert.ok(peakRssKb < 600 * 1024, `plugin RSS stayed bounded (peak ${peakRssKb} kB)`);
  } finally {
    clearInterval(rssTimer);
    proc.stdin.end();
    await new Promise((res) => (proc.exitCode !== null ? res(null) : proc.once('exit', res)));
    ws.cleanup();
  }
});

test('a reader that falls behind (stdout pipe full): the plugin waits instead of exiting or cutting answers', {
  timeout: 60_000,
}, async () => {
  const ws = makeWorkspace({ dht: { enabled: false } });
  const proc = spawn(process.execPath, [PLUGIN_BIN], {
    env: { ...process.env, NOSTR_BT_CONFIG: ws.configPath },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  proc.stderr.resume();
  let exitedEarly = false;
  proc.on('exit', () => (exitedEarly = true));
  const ids: string[] = [];
  const lines: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    // Long ids make long answers: the 64 KiB pipe fills after ~700 of them.
    const id = 'i'.repeat(200) + i;
    ids.push(id);
    lines.push(JSON.stringify({ event: { id }, sourceType: 'IP4', type: 'new' }));
  }
  try {
    proc.stdout.pause();
    const writing = (async () => {
      for (const l of lines) if (!proc.stdin.write(l + '\n')) await new Promise((r) => proc.stdin.once('drain', r));
    })();
    await new Promise((r) => setTimeout(r, 1000)); // nobody reads stdout meanwhile
    assert.equal(exitedEarly, false, 'still running with its stdout full');
    const replies: string[] = [];
    createInterface({ input: proc.stdout }).on('line', (l) => replies.push(l));
    proc.stdout.resume();
    await writing;
    const deadline = Date.now() + 30_000;
    while (replies.length < ids.length && Date.now() < deadline && !exitedEarly) await new Promise((r) => setTimeout(r, 20));
    assert.equal(exitedEarly, false);
    assert.equal(replies.length, ids.length, 'every line answered');
    replies.forEach((l, i) => void assert.deepEqual(JSON.parse(l), { id: ids[i], action: 'accept' }, `answer ${i} whole and in order`));
  } finally {
    proc.stdin.end();
    await new Promise((res) => (proc.exitCode !== null ? res(null) : proc.once('exit', res)));
    ws.cleanup();
  }
});
