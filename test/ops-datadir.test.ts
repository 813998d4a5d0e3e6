// Where the data lives, whoever asks from wherever: a relative NOSTR_BT_DATA_DIR is refused (each
// process would resolve it against its own working directory); relative paths in the config file
// (dataDir, bridge.nostrKeyFile) are relative to the file for the plugin, the sidecar and the CLI
// alike. A data directory that cannot be created or written ends the sidecar with one log line
// naming the path and the cause, and exit 4; read-only commands say the same in one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type SpawnOptions } from 'node:child_process';
import { chmodSync, statSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'smol-toml';
import { CLI_BIN, FIXTURES, LOOPBACK_DEFAULTS, PLUGIN_BIN, SIDECAR_BIN, SidecarProcess, makeWorkspace } from './testkit/sidecar-process.js';
import { loadConfig, ConfigError } from '../sidecar/common/config.js';
import type { Status } from '../sidecar/ops/status.js';

const run = promisify(execFile);
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('NOSTR_BT_')) delete env[k];
  return { ...env, ...extra };
}

/** Runs a program to its exit (bounded): exit code and output. */
async function runToExit(
  bin: string,
  args: string[],
  opts: SpawnOptions = {},
  ms = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawn(process.execPath, [bin, ...args], { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  p.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  const timer = setTimeout(() => p.kill('SIGKILL'), ms);
  const code = await exited;
  clearTimeout(timer);
  if (p.signalCode === 'SIGKILL') assert.fail(`${bin} still running after ${ms} ms: ${stderr.slice(-2000)}`);
  return { code, stdout, stderr };
}

/** One pino line whose message names `path` and matches `cause`; no stack trace anywhere. */
function assertOneLine(stderr: string, path: string, cause: RegExp): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${stderr}`);
  assert.doesNotMatch(stderr, /\n\s+at |"stack"/, 'no stack trace');
  const msg = (JSON.parse(lines[0]!) as { msg: string }).msg;
  assert.ok(msg.includes(path), `${msg} names ${path}`);
  assert.match(msg, cause);
}

test("a relative NOSTR_BT_DATA_DIR is refused by the sidecar, the CLI and the plugin's config loader, and nothing is created", {
  timeout: 60_000,
}, async () => {
  const ws = makeWorkspace({ dht: { enabled: false } });
  const cwd = join(ws.dir, 'cwd');
  mkdirSync(cwd);
  try {
    const env = cleanEnv({ NOSTR_BT_DATA_DIR: 'data-here' });
    const sidecar = await runToExit(SIDECAR_BIN, ['--config', ws.configPath], { cwd, env });
    assert.equal(sidecar.code, 2, sidecar.stderr);
    assert.match(sidecar.stderr, /^nostr-bt-sidecar: NOSTR_BT_DATA_DIR must be an absolute path \(got "data-here"\)/);
    const status = await runToExit(CLI_BIN, ['status'], { cwd, env });
    assert.equal(status.code, 2, status.stderr);
    assert.match(status.stderr, /NOSTR_BT_DATA_DIR must be an absolute path/);
    assert.throws(
      () => loadConfig({ env: { NOSTR_BT_DATA_DIR: 'data-here' }, cwd }),
      (e: unknown) => e instanceof ConfigError && /absolute path/.test(e.message),
    );
    assert.deepEqual(readdirSync(cwd), []);
    // An absolute one is used as it is; a --data-dir flag is relative to the shell's directory.
    assert.equal(loadConfig({ env: { NOSTR_BT_DATA_DIR: '/srv/nostr-bt' }, cwd }).dataDir, '/srv/nostr-bt');
    assert.equal(loadConfig({ env: { NOSTR_BT_DATA_DIR: 'ignored' }, dataDir: 'flag', cwd }).dataDir, join(cwd, 'flag'));
  } finally {
    ws.cleanup();
  }
});

test('relative dataDir and bridge.nostrKeyFile in the config file: plugin, sidecar and CLI started in different directories agree', {
  timeout: 90_000,
}, async () => {
  const root = mkdtempSync(join(tmpdir(), 'nostr-bt-test-'));
  const confDir = join(root, 'etc');
  const [cwdSidecar, cwdPlugin, cwdCli] = ['run-sidecar', 'run-plugin', 'run-cli'].map((d) => join(root, d));
  for (const d of [confDir, cwdSidecar!, cwdPlugin!, cwdCli!]) mkdirSync(d);
  const configPath = join(confDir, 'config.toml');
  writeFileSync(
    configPath,
    stringify({ ...LOOPBACK_DEFAULTS, dataDir: '../data', dht: { enabled: false }, bridge: { nostrKeyFile: 'nostr.key' } }),
  );
  writeFileSync(join(confDir, 'nostr.key'), 'a'.repeat(64) + '\n', { mode: 0o600 });
  const dataDir = join(root, 'data');
  const sc = new SidecarProcess(configPath, dataDir);
  const origCwd = process.cwd();
  try {
    process.chdir(cwdSidecar!); // SidecarProcess starts the child in this process's directory
    try {
      await sc.start();
    } finally {
      process.chdir(origCwd);
    }
    assert.match(
      sc.stderr,
      new RegExp(`bridge key [0-9a-f]{64}: derived from bridge.nostrKeyFile ${join(confDir, 'nostr.key')} \\(config\\)`),
    );

    const plugin = spawn(process.execPath, [PLUGIN_BIN], {
      cwd: cwdPlugin,
      stdio: ['pipe', 'ignore', 'ignore'],
      env: cleanEnv({ NOSTR_BT_CONFIG: configPath }),
    });
    plugin.stdin.end(readFileSync(join(FIXTURES, 'strfry-plugin-input.jsonl')));
    await new Promise((r) => plugin.once('exit', r));
    const s = await sc.waitFor((st) => st.events.received === 15);
    assert.equal(s.dataDir, dataDir);

    const status = JSON.parse(
      (await run(process.execPath, [CLI_BIN, 'status'], { cwd: cwdCli, env: cleanEnv({ NOSTR_BT_CONFIG: configPath }) })).stdout,
    ) as Status;
    assert.equal(status.dataDir, dataDir);
    assert.equal(status.events.received, 15);
    const key = JSON.parse(
      (await run(process.execPath, [CLI_BIN, '--config', configPath, 'key'], { cwd: cwdCli, env: cleanEnv() })).stdout,
    ) as { publicKey: string; derivedFrom: string };
    assert.equal(key.publicKey, s.bridge?.publicKey);
    assert.equal(key.derivedFrom, 'nostr secret key');
    for (const d of [cwdSidecar!, cwdPlugin!, cwdCli!]) assert.deepEqual(readdirSync(d), [], `nothing written in ${d}`);
    assert.equal(await sc.stop(), 0);
  } finally {
    await sc.kill9();
    rmSync(root, { recursive: true, force: true });
  }
});

test('an impossible or unwritable data directory: one log line with the path and the cause, exit 4 (no stack trace)', {
  timeout: 90_000,
}, async (t) => {
  const ws = makeWorkspace({ dht: { enabled: false } });
  try {
    // Under a regular file.
    const file = join(ws.dir, 'a-file');
    writeFileSync(file, '');
    const underFile = await runToExit(SIDECAR_BIN, ['--config', ws.configPath, '--data-dir', join(file, 'data')], { env: cleanEnv() });
    assert.equal(underFile.code, 4, underFile.stderr);
    assertOneLine(underFile.stderr, join(file, 'data'), /ENOTDIR/);

    // In a directory this user may not write to (as root: run the sidecar as nobody, who must
    // be able to reach the workspace).
    if (isRoot && !(statSync(tmpdir()).mode & 0o001)) {
      t.diagnostic(`${tmpdir()} is not searchable by other users: the unwritable cases are not run`);
      return;
    }
    chmodSync(ws.dir, 0o755);
    chmodSync(ws.configPath, 0o644);
    const locked = join(ws.dir, 'read-only');
    mkdirSync(locked, { mode: 0o555 });
    chmodSync(locked, 0o555);
    const asUser: SpawnOptions = isRoot ? { uid: NOBODY, gid: NOBODY } : {};
    const unwritable = await runToExit(SIDECAR_BIN, ['--config', ws.configPath, '--data-dir', join(locked, 'data')], {
      ...asUser,
      env: cleanEnv(),
    });
    assert.equal(unwritable.code, 4, unwritable.stderr);
    assertOneLine(unwritable.stderr, join(locked, 'data'), /EACCES/);
    if (!isRoot) return;

    // A data directory the service user owns, holding an index someone else created (the
    // sidecar was run once as root): the index is named, the sidecar exits 4.
    const sc = new SidecarProcess(ws.configPath, ws.dataDir);
    try {
      await sc.start();
      assert.equal(await sc.stop(), 0);
    } finally {
      await sc.kill9();
    }
    chmodSync(ws.dataDir, 0o777); // writable for nobody; the index inside stays root's
    const wrongOwner = await runToExit(SIDECAR_BIN, ['--config', ws.configPath], { ...asUser, env: cleanEnv() });
    assert.equal(wrongOwner.code, 4, wrongOwner.stderr);
    assertOneLine(wrongOwner.stderr, join(ws.dataDir, 'index'), /EACCES/);

    // Read-only commands, as a user who may not read the key: one line naming the file.
    const key = await runToExit(CLI_BIN, ['--config', ws.configPath, 'key'], { ...asUser, env: cleanEnv() });
    assert.equal(key.code, 1, key.stderr);
    assert.match(
      key.stderr,
      new RegExp(`^nostr-bt key: cannot read the bridge key: EACCES: permission denied, open '${join(ws.dataDir, 'bridge.key')}'\\n$`),
    );
  } finally {
    ws.cleanup();
  }
});
