// The command-line conventions every nostr-bt command shares: -V/--version prints the package
// version, -h/--help the usage, both exit 0 without starting anything; usage errors (unknown
// option, bad or missing value, extra argument) exit 2 with one line; `status --json`; a mistyped
// config key names the key it probably meant.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closestKey, editDistance } from '../sidecar/common/closest-key.js';
import { ConfigError, loadConfig } from '../sidecar/common/config.js';
import { Store } from '../sidecar/index/store.js';
import { BACKFILL_BIN } from './testkit/backfill-cli.js';
import { CLI_BIN, DIST, SIDECAR_BIN, makeWorkspace } from './testkit/sidecar-process.js';

const VERSION = (JSON.parse(readFileSync(join(DIST, '../package.json'), 'utf8')) as { version: string }).version;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a bin with no config in reach (an empty cwd, no NOSTR_BT_* variables). */
function run(bin: string, args: string[], cwd: string): Promise<Result> {
  const env = { ...process.env };
  delete env.NOSTR_BT_CONFIG;
  delete env.NOSTR_BT_DATA_DIR;
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd, env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (((err as { code?: unknown }).code as number | null) ?? null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
    });
  });
}

const COMMANDS: [string, string, string[]][] = [
  ['nostr-bt', CLI_BIN, []],
  ['nostr-bt status', CLI_BIN, ['status']],
  ['nostr-bt key', CLI_BIN, ['key']],
  ['nostr-bt resolve', CLI_BIN, ['resolve']],
  ['nostr-bt crawl', CLI_BIN, ['crawl']],
  ['nostr-bt-backfill', BACKFILL_BIN, []],
  ['nostr-bt-sidecar', SIDECAR_BIN, []],
];

test('every command: --version and -V print the version, -h and --help the usage: exit 0, nothing created', {
  timeout: 240_000,
}, async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'nostr-bt-test-cli-'));
  try {
    for (const [name, bin, sub] of COMMANDS) {
      for (const flag of ['--version', '-V']) {
        const r = await run(bin, [...sub, flag], cwd);
        assert.equal(r.code, 0, `${name} ${flag}: ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`^nostr-bt[a-z-]* ${VERSION.replace(/\./g, '\\.')}\\n$`), `${name} ${flag} prints the version`);
      }
      for (const flag of ['-h', '--help']) {
        const r = await run(bin, [...sub, flag], cwd);
        assert.equal(r.code, 0, `${name} ${flag}: ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`^Usage: ${name} `), `${name} ${flag} prints its usage`);
        assert.match(r.stdout, /-V, --version/);
      }
    }
    assert.deepEqual(readdirSync(cwd), [], 'no data directory or anything else was created');
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('usage errors exit 2 with one line naming the problem, for every command', { timeout: 240_000 }, async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'nostr-bt-test-cli-'));
  const author = 'a'.repeat(64);
  try {
    const cases: [string, string, string[], RegExp][] = [
      ['nostr-bt', CLI_BIN, ['--bogus'], /unknown option '--bogus'/],
      ['nostr-bt', CLI_BIN, ['frobnicate'], /unknown command 'frobnicate'/],
      ['nostr-bt', CLI_BIN, [], /Usage: nostr-bt/], // no command: the usage, on stderr
      ['nostr-bt status', CLI_BIN, ['status', '--bogus'], /unknown option '--bogus'/],
      ['nostr-bt status', CLI_BIN, ['status', '--json', '--table'], /cannot be used with/],
      ['nostr-bt key', CLI_BIN, ['key', 'extra'], /too many arguments/],
      ['nostr-bt resolve', CLI_BIN, ['resolve', author, '--bogus'], /unknown option '--bogus'/],
      ['nostr-bt resolve', CLI_BIN, ['resolve'], /missing required argument 'author'/],
      [
        'nostr-bt resolve',
        CLI_BIN,
        ['resolve', author, '--bridge', author, '--kinds', 'abc', '--bootstrap', '127.0.0.1:9'],
        /--kinds: not a kind/,
      ],
      ['nostr-bt crawl', CLI_BIN, ['crawl', author, '--bogus'], /unknown option '--bogus'/],
      [
        'nostr-bt crawl',
        CLI_BIN,
        ['crawl', author, '--bridge', author, '--depth', 'x', '--bootstrap', '127.0.0.1:9'],
        /--depth: not a whole number/,
      ],
      ['nostr-bt-backfill', BACKFILL_BIN, ['--bogus'], /unknown option '--bogus'/],
      ['nostr-bt-backfill', BACKFILL_BIN, ['--max-unacked', 'abc'], /--max-unacked: expected an integer/],
      ['nostr-bt-backfill', BACKFILL_BIN, ['--file'], /argument missing/],
      ['nostr-bt-sidecar', SIDECAR_BIN, ['--bogus'], /unknown option '--bogus'/],
      ['nostr-bt-sidecar', SIDECAR_BIN, ['extra'], /too many arguments/],
    ];
    for (const [name, bin, args, message] of cases) {
      const r = await run(bin, args, cwd);
      assert.equal(r.code, 2, `${name} ${args.join(' ')} exits 2: ${r.stderr}`);
      assert.match(r.stderr, message, `${name} ${args.join(' ')}`);
      if (args.length > 0) {
        const lines = r.stderr.trim().split('\n');
        assert.ok(lines.length <= 2, `one line (and a pointer to --help), not a stack: ${r.stderr}`);
        assert.match(lines[0]!, new RegExp(`^${name.split(' ')[0]}`), 'the line names the command');
      }
    }
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('nostr-bt status --json is accepted and prints the same JSON as plain `status`', { timeout: 60_000 }, async () => {
  const ws = makeWorkspace({ dht: { enabled: false } });
  try {
    const cfg = loadConfig({ configPath: ws.configPath, env: {} });
    await Store.open(cfg.indexDir).close(); // an index, no sidecar running
    const plain = await run(CLI_BIN, ['--config', ws.configPath, 'status'], ws.dir);
    const json = await run(CLI_BIN, ['--config', ws.configPath, 'status', '--json'], ws.dir);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(plain.code, 0, plain.stderr);
    const a = JSON.parse(json.stdout) as { sidecar: string; events: unknown };
    const b = JSON.parse(plain.stdout) as { sidecar: string; events: unknown };
    assert.equal(a.sidecar, 'down');
    assert.deepEqual(a.events, b.events);
  } finally {
    ws.cleanup();
  }
});

test('a mistyped config key: the error suggests the closest valid key (or the section that has it)', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-test-cli-'));
  try {
    const path = join(dir, 'config.toml');
    writeFileSync(path, '[dht]\nenabeld = false\nzzzzzz = 1\n[bundle]\nport = 1\n[dth]\nport = 1\n');
    let message = '';
    assert.throws(
      () => loadConfig({ configPath: path, env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        message = err.message;
        return true;
      },
    );
    assert.match(message, /^ {2}dht\.enabeld: unknown key; did you mean dht\.enabled\?$/m);
    assert.match(message, /^ {2}dht\.zzzzzz: unknown key$/m, 'nothing close: no guess');
    assert.match(message, /^ {2}bundle\.port: unknown key; port is a key of \[bittorrent\] and \[dht\]$/m);
    assert.match(message, /^ {2}dth: unknown key; did you mean dht\?$/m);
    // As the operator sees it, from the sidecar: the same line, exit 2.
    const r = await run(SIDECAR_BIN, ['--config', path], dir);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /dht\.enabeld: unknown key; did you mean dht\.enabled\?/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('edit distance and the closest key', () => {
  assert.equal(editDistance('enabeld', 'enabled'), 1, 'a swap of neighbours is one edit');
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('Port', 'port'), 0, 'case is ignored');
  assert.equal(closestKey('enabeld', ['enabled', 'port', 'host']), 'enabled');
  assert.equal(closestKey('bootstap', ['bootstrap', 'port']), 'bootstrap');
  assert.equal(closestKey('port', ['host']), null, 'two edits in four letters is not a typo');
  assert.equal(closestKey('xyz', []), null);
});
