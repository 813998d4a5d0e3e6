// One sidecar per data directory: a second one is refused with a line naming the first (exit 3)
// and touches nothing of it; read-only tools keep working meanwhile; a sidecar killed with
// SIGKILL, or a lock naming a pid that now belongs to another process, does not block the next
// start; several processes racing for a stale lock: exactly one wins. Real processes throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'smol-toml';
import { CLI_BIN, DIST, SIDECAR_BIN, SidecarProcess, makeWorkspace } from './testkit/sidecar-process.js';
import type { Status } from '../sidecar/ops/status.js';

const run = promisify(execFile);
const LOCK_CHILD = join(DIST, 'test/testkit/lock-child.js');
const LOCKED_EXIT = 3;

/** Runs a sidecar that is expected to exit by itself; kills it (and fails) if it is still up after `ms`. */
async function runToExit(configPath: string, ms = 30_000): Promise<{ code: number | null; stderr: string }> {
  const p = spawn(process.execPath, [SIDECAR_BIN, '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  const timer = setTimeout(() => p.kill('SIGKILL'), ms);
  const code = await exited;
  clearTimeout(timer);
  if (p.signalCode === 'SIGKILL')
    assert.fail(`the second sidecar was still running after ${ms} ms (it should have been refused): ${stderr.slice(-2000)}`);
  return { code, stderr };
}

function runtimePid(dataDir: string): number {
  return (JSON.parse(readFileSync(join(dataDir, 'sidecar.json'), 'utf8')) as { pid: number }).pid;
}

function assertRefusedNaming(r: { code: number | null; stderr: string }, pid: number): void {
  assert.equal(r.code, LOCKED_EXIT, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one log line, no stack: ${r.stderr}`);
  const msg = (JSON.parse(lines[0]!) as { msg: string }).msg;
  assert.match(msg, new RegExp(`in use by another nostr-bt sidecar \\(pid ${pid}, started \\d{4}-\\d\\d-\\d\\dT`));
}

test('a second sidecar on the same data directory is refused (exit 3, names the first); the first keeps its sidecar.json; status and key keep working', {
  timeout: 120_000,
}, async () => {
  const ws = makeWorkspace({ dht: { enabled: false } });
  const a = new SidecarProcess(ws.configPath, ws.dataDir);
  try {
    await a.start();
    const pidA = runtimePid(ws.dataDir);
    const before = await a.status();

    // The same config (same socket), and another config with its own socket and status port but
    // the same data directory: the case that used to start, seed the same bundles and, at its
    // stop, delete the first one's sidecar.json.
    const other = join(ws.dir, 'other.toml');
    writeFileSync(
      other,
      stringify({
        dataDir: ws.dataDir,
        socket: { path: join(ws.dir, 'other.sock') },
        status: { listen: '127.0.0.1:0' },
        bittorrent: { port: 0 },
        dht: { enabled: false },
      }),
    );
    for (const config of [ws.configPath, other]) assertRefusedNaming(await runToExit(config), pidA);

    assert.equal(runtimePid(ws.dataDir), pidA, "the first sidecar's sidecar.json is untouched");
    assert.ok(!existsSync(join(ws.dir, 'other.sock')), 'the refused sidecar opened no socket');
    const after = await a.status();
    assert.equal(after.sidecar, 'up');
    assert.equal(after.process?.pid, pidA);

    // Read-only tools, while the sidecar runs.
    const s = JSON.parse((await run(process.execPath, [CLI_BIN, '--config', ws.configPath, 'status'])).stdout) as Status;
    assert.equal(s.sidecar, 'up');
    assert.equal(s.process?.pid, pidA);
    const key = JSON.parse((await run(process.execPath, [CLI_BIN, '--config', ws.configPath, 'key'])).stdout) as { publicKey: string };
    assert.equal(key.publicKey, before.bridge?.publicKey);

    assert.equal(await a.stop(), 0);
    assert.ok(!existsSync(join(ws.dataDir, 'sidecar.lock')), 'a clean stop removes the lock');
  } finally {
    await a.kill9();
    ws.cleanup();
  }
});

test('a sidecar killed with SIGKILL does not block the next start; a lock whose pid now names another process is stale; a live holder is refused', {
  timeout: 120_000,
}, async () => {
  const ws = makeWorkspace({ dht: { enabled: false } });
  const lockFile = join(ws.dataDir, 'sidecar.lock');
  let sleeper: ChildProcess | null = null;
  const sc = new SidecarProcess(ws.configPath, ws.dataDir);
  try {
    await sc.start();
    await sc.kill9();
    assert.ok(existsSync(lockFile), 'SIGKILL leaves the lock file behind');
    await sc.start();
    assert.equal(await sc.stop(), 0);

    // A live process that is not the one that wrote the lock (its pid was reused).
    sleeper = spawn('sleep', ['120'], { stdio: 'ignore' });
    const pid = sleeper.pid!;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const procStart = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const lock = (over: Record<string, unknown>) =>
      writeFileSync(
        lockFile,
        JSON.stringify({
          pid,
          host: hostname(),
          startedAt: '2026-01-01T00:00:00.000Z',
          procStart,
          bootId,
          command: 'nostr-bt-sidecar',
          ...over,
        }) + '\n',
      );

    lock({ procStart: String(Number(procStart) - 1) });
    await sc.start();
    assert.equal(await sc.stop(), 0, 'pid reused by a younger process: the lock was stale');

    lock({ bootId: '00000000-0000-0000-0000-000000000000' });
    await sc.start();
    assert.equal(await sc.stop(), 0, 'written before a reboot: the lock was stale');

    lock({});
    assertRefusedNaming(await runToExit(ws.configPath), pid);
    assert.ok(existsSync(lockFile), "a live holder's lock is left alone");
  } finally {
    sleeper?.kill('SIGKILL');
    await sc.kill9();
    ws.cleanup();
  }
});

test('processes racing for a stale lock: exactly one takes it, each round', { timeout: 180_000 }, async () => {
  const ws = makeWorkspace();
  const lockFile = join(ws.dataDir, 'sidecar.lock');
  const children: ChildProcess[] = [];
  mkdirSync(ws.dataDir, { recursive: true });
  /** Resolves with the child's next stdout line. */
  const nextLine = (c: ChildProcess) =>
    new Promise<string>((resolve) => {
      let out = '';
      const onData = (d: string) => {
        out += d;
        if (!out.includes('\n')) return;
        c.stdout!.off('data', onData);
        resolve(out.trim());
      };
      c.stdout!.on('data', onData);
      c.once('exit', () => resolve(out.trim() || 'exited'));
    });
  try {
    for (let round = 0; round < 10; round++) {
      // A holder that is gone: pid_max is at most 2^22, so this pid cannot exist.
      writeFileSync(
        lockFile,
        JSON.stringify({
          pid: 2 ** 22 + 1,
          host: hostname(),
          startedAt: '2026-01-01T00:00:00.000Z',
          procStart: null,
          bootId: null,
          command: 'x',
        }),
      );
      for (let i = 0; i < 6; i++) {
        const c = spawn(process.execPath, [LOCK_CHILD, ws.dataDir], { stdio: ['pipe', 'pipe', 'inherit'] });
        c.stdout!.setEncoding('utf8');
        children.push(c);
      }
      assert.deepEqual(await Promise.all(children.map(nextLine)), Array(6).fill('ready'));
      const outcomes = Promise.all(children.map(nextLine));
      for (const c of children) c.stdin!.write('go\n');
      const got = await outcomes;
      assert.equal(got.filter((o) => o === 'locked').length, 1, `round ${round}: ${JSON.stringify(got)}`);
      assert.equal(got.filter((o) => o === 'refused locked').length, 5, `round ${round}: ${JSON.stringify(got)}`);
      // The winner lets go when its stdin closes.
      for (const c of children.splice(0)) {
        c.stdin!.end();
        if (c.exitCode === null && c.signalCode === null) await new Promise((r) => c.once('exit', r));
      }
      assert.ok(!existsSync(lockFile), 'released');
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
    ws.cleanup();
  }
});
