// Read-only commands create nothing: `nostr-bt key` with no data says there is no key (and makes
// none), `nostr-bt status` makes no index; a spool that no running sidecar drains is shown as
// such; the sidecar logs its bridge key and where it came from, the key `nostr-bt key` prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI_BIN, FIXTURES, PLUGIN_BIN, SidecarProcess, makeWorkspace } from './testkit/sidecar-process.js';
import type { Status } from '../sidecar/ops/status.js';

const run = promisify(execFile);

/** The environment of a newcomer's shell: no nostr-bt variables. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('NOSTR_BT_')) delete env[k];
  return env;
}

async function cli(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI_BIN, ...args], { cwd: opts.cwd, env: opts.env ?? cleanEnv() });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('in a directory with no data, `nostr-bt key` and `nostr-bt status` say so, exit 1 and create nothing', {
  skip: existsSync('/etc/nostr-bt/config.toml') && 'this machine has /etc/nostr-bt/config.toml',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-test-'));
  try {
    const key = await cli(['key'], { cwd: dir });
    assert.equal(key.code, 1, key.stdout + key.stderr);
    assert.equal(key.stdout, '', 'no key printed as if it were the bridge key');
    assert.match(key.stderr, /^nostr-bt key: no bridge key: .*nostr-bt-data\/bridge\.key does not exist/);
    assert.deepEqual(readdirSync(dir), [], '`key` created nothing');

    const status = await cli(['status'], { cwd: dir });
    assert.equal(status.code, 1, status.stdout + status.stderr);
    assert.match(status.stderr, /^nostr-bt status: no running sidecar and nothing at .*nostr-bt-data \(no index, no spool files\)/);
    assert.equal(status.stderr.trim().split('\n').length, 1);
    assert.deepEqual(readdirSync(dir), [], '`status` created nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('spool files and no sidecar: `nostr-bt status` (JSON and table) says nothing drains them, without creating an index', {
  timeout: 60_000,
}, async () => {
  const ws = makeWorkspace();
  try {
    // What strfry does while the sidecar is down: the plugin spools.
    const plugin = spawn(process.execPath, [PLUGIN_BIN], {
      stdio: ['pipe', 'ignore', 'ignore'],
      env: { ...cleanEnv(), NOSTR_BT_CONFIG: ws.configPath },
    });
    plugin.stdin.end(readFileSync(join(FIXTURES, 'strfry-plugin-input.jsonl')));
    await new Promise((r) => plugin.once('exit', r));
    const spooled = readdirSync(join(ws.dataDir, 'spool')).filter((f) => f.endsWith('.ready') || f.endsWith('.open'));
    assert.ok(spooled.length > 0, 'the plugin spooled');

    const json = await cli(['--config', ws.configPath, 'status']);
    assert.equal(json.code, 0, json.stderr);
    const s = JSON.parse(json.stdout) as Status;
    assert.equal(s.sidecar, 'down');
    assert.equal(s.spool.files, spooled.length);
    assert.equal(s.spool.draining, false);
    assert.ok(
      s.warnings?.some((w) => /spool files? .* and no running sidecar drains them: events are piling up/.test(w)),
      JSON.stringify(s.warnings),
    );
    assert.equal(s.events.stored, 0);

    const table = await cli(['--config', ws.configPath, 'status', '--table']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /spool files\s+\d+\s+NOT DRAINED: no sidecar running/);
    assert.match(table.stdout, /WARNING\s+.*no running sidecar drains them/);
    assert.ok(!existsSync(join(ws.dataDir, 'index')), 'status did not create the index');
  } finally {
    ws.cleanup();
  }
});

test('the sidecar logs its bridge key and where it came from (generated now, then loaded); `nostr-bt key` prints the same key', {
  timeout: 90_000,
}, async () => {
  const ws = makeWorkspace({ dht: { enabled: false } });
  const sc = new SidecarProcess(ws.configPath, ws.dataDir);
  const keyFile = join(ws.dataDir, 'bridge.key');
  const logged = () => {
    const line = sc.stderr.split('\n').find((l) => l.includes('"bridge key '));
    assert.ok(line, sc.stderr.slice(-2000));
    return JSON.parse(line) as { msg: string; bridgeKey: string; keyOrigin: string; keyFile: string };
  };
  try {
    await sc.start();
    const first = logged();
    assert.equal(first.msg, `bridge key ${first.bridgeKey}: generated now into ${keyFile}`);
    assert.equal(first.keyOrigin, 'generated now');
    assert.equal(first.keyFile, keyFile);
    assert.doesNotMatch(sc.stderr, new RegExp(readFileSync(keyFile, 'utf8').trim()), 'the secret is not logged');
    const key = JSON.parse((await cli(['--config', ws.configPath, 'key'])).stdout) as { publicKey: string; keyFile: string };
    assert.equal(key.publicKey, first.bridgeKey);
    assert.equal(key.keyFile, keyFile);
    assert.equal(await sc.stop(), 0);

    sc.stderr = '';
    await sc.start();
    const second = logged();
    assert.equal(second.msg, `bridge key ${first.bridgeKey}: loaded from ${keyFile}`);
    assert.equal(second.keyOrigin, 'loaded');
    assert.equal(await sc.stop(), 0);
  } finally {
    await sc.kill9();
    ws.cleanup();
  }
});

test('a live process holds the data directory and its status endpoint is not up yet: `nostr-bt status` says "starting" with its pid, not "down"', {
  timeout: 30_000,
}, async () => {
  const ws = makeWorkspace();
  const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    const stat = readFileSync(`/proc/${holder.pid}/stat`, 'utf8');
    mkdirSync(ws.dataDir, { recursive: true });
    writeFileSync(
      join(ws.dataDir, 'sidecar.lock'),
      JSON.stringify({
        pid: holder.pid,
        host: hostname(),
        startedAt: '2026-12-07T15:20:01.314Z',
        procStart: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19],
        bootId: null,
        command: 'nostr-bt-sidecar',
      }),
    );
    const r = await cli(['--config', ws.configPath, 'status']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as Status;
    assert.equal(s.sidecar, 'starting');
    assert.deepEqual(s.process, { pid: holder.pid, startedAt: '2026-12-07T15:20:01.314Z' });
    assert.equal(s.spool.draining, true);
    assert.ok(
      s.warnings?.some((w) => w.includes(`pid ${holder.pid}`) && /is starting/.test(w)),
      JSON.stringify(s.warnings),
    );
    const table = await cli(['--config', ws.configPath, 'status', '--table']);
    assert.match(table.stdout, new RegExp(`^sidecar\\s+starting \\(pid ${holder.pid}, started 2026-12-07T15:20:01.314Z\\)$`, 'm'));
    assert.ok(!existsSync(join(ws.dataDir, 'index')));
  } finally {
    holder.kill('SIGKILL');
    ws.cleanup();
  }
});
