// nostr-bt-plugin's command line, run as strfry runs it: `/bin/sh -c "<plugin>"`, in strfry's own
// working directory (docs/strfry-plugin-protocol.md). Operators write
// `plugin = "/usr/local/bin/nostr-bt-plugin --config /etc/nostr-bt/config.toml"`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StrfryHarness } from './testkit/strfry-harness.js';
import { makeWorkspace, SidecarProcess, PLUGIN_BIN, FIXTURES, DIST, sleep } from './testkit/sidecar-process.js';
import { pluginEnv, runPlugin, logLines, spoolLines, filesUnder, exitSummary } from './testkit/plugin-run.js';
import { DEFAULT_CONFIG_PATH } from '../sidecar/common/config.js';

const fixtureLines = () => readFileSync(join(FIXTURES, 'strfry-plugin-input.jsonl'), 'utf8').trim().split('\n');
const idOf = (line: string) => (JSON.parse(line) as { event: { id: string } }).event.id;
const VERSION = (JSON.parse(readFileSync(join(DIST, '../package.json'), 'utf8')) as { version: string }).version;

/** strfry's working directory: the plugin must leave nothing here when it is given a config. */
function strfryCwd(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-test-strfry-cwd-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await sleep(25);
  }
  return cond();
}

test("--config FILE in the plugin command is honoured: events reach the sidecar of that file, nothing lands in strfry's directory", {
  timeout: 120_000,
}, async () => {
  const ws = makeWorkspace();
  const cwd = strfryCwd();
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  const h = new StrfryHarness(`${PLUGIN_BIN} --config ${ws.configPath}`, { cwd: cwd.dir, env: pluginEnv(), timeoutMs: 20_000 });
  try {
    await sidecar.start(30_000);
    const lines = fixtureLines();
    for (const line of lines) assert.equal((await h.send(line, idOf(line))).reply.action, 'accept');
    const s = await sidecar.waitFor((st) => st.events.received === lines.length, 60_000);
    assert.equal(s.events.received, lines.length, 'the plugin connected to the socket named in --config');
    assert.ok((await h.close()).exitedByItself);
    assert.deepEqual(filesUnder(cwd.dir), [], "nothing in strfry's working directory");
    assert.equal(h.warnings.length, 0, 'nothing but replies on stdout');
  } finally {
    await h.close();
    await sidecar.kill9();
    ws.cleanup();
    cwd.cleanup();
  }
});

test("-c FILE and --config=FILE: with the sidecar down, lines spool into that file's data directory", { timeout: 120_000 }, async () => {
  const ws = makeWorkspace();
  const cwd = strfryCwd();
  try {
    const lines = fixtureLines();
    for (const flag of [`-c ${ws.configPath}`, `--config=${ws.configPath}`]) {
      rmSync(join(ws.dataDir, 'spool'), { recursive: true, force: true });
      const h = new StrfryHarness(`${PLUGIN_BIN} ${flag}`, { cwd: cwd.dir, env: pluginEnv(), timeoutMs: 20_000 });
      try {
        for (const line of lines) assert.equal((await h.send(line, idOf(line))).reply.action, 'accept', flag);
        assert.ok((await h.close()).exitedByItself, flag);
        assert.deepEqual(spoolLines(join(ws.dataDir, 'spool')), lines, `${flag}: every line in the configured spool`);
        assert.deepEqual(filesUnder(cwd.dir), [], `${flag}: nothing in strfry's working directory`);
        const summary = exitSummary(h.stderr);
        assert.equal(summary.spooled, lines.length, flag);
      } finally {
        await h.close();
      }
    }
  } finally {
    ws.cleanup();
    cwd.cleanup();
  }
});

test('--help / -h and --version / -V print and exit 0 without starting the plugin; usage errors exit 2 on stderr', {
  timeout: 120_000,
}, async () => {
  const cwd = strfryCwd();
  try {
    // stdin stays open, as strfry keeps it: the plugin must exit by itself, not wait for events.
    for (const flag of ['--help', '-h']) {
      const r = await runPlugin(`${PLUGIN_BIN} ${flag}`, { cwd: cwd.dir, env: pluginEnv() });
      assert.equal(r.code, 0, `${flag}: exit 0 (stderr: ${r.stderr})`);
      assert.match(r.stdout, /^Usage: nostr-bt-plugin \[options\]/, flag);
      assert.match(r.stdout, /--config <file>/, flag);
      assert.match(r.stdout, /NOSTR_BT_CONFIG/, flag);
      assert.equal(r.stderr, '', `${flag}: nothing on stderr`);
    }
    for (const flag of ['--version', '-V']) {
      const r = await runPlugin(`${PLUGIN_BIN} ${flag}`, { cwd: cwd.dir, env: pluginEnv() });
      assert.equal(r.code, 0, flag);
      assert.equal(r.stdout, `${VERSION}\n`, flag);
      assert.equal(r.stderr, '', flag);
    }
    const usage: [string, RegExp][] = [
      ['--bogus', /unknown option '--bogus'/],
      ['--config', /argument missing/],
      ['stray-argument', /too many arguments/],
    ];
    for (const [args, why] of usage) {
      const r = await runPlugin(`${PLUGIN_BIN} ${args}`, { cwd: cwd.dir, env: pluginEnv() });
      assert.equal(r.code, 2, `${args}: a usage error exits 2 (stdout ${JSON.stringify(r.stdout)}, stderr ${r.stderr})`);
      assert.equal(r.stdout, '', `${args}: nothing on stdout (strfry's protocol channel)`);
      assert.match(r.stderr, why, args);
      assert.match(r.stderr, /nostr-bt-plugin --help/, `${args}: points at --help`);
    }
    assert.deepEqual(filesUnder(cwd.dir), [], 'none of them started the plugin');
  } finally {
    cwd.cleanup();
  }
});

test('no config file anywhere: one warning on stderr naming the defaults and the spool; stdout carries only replies', {
  timeout: 120_000,
  skip: existsSync(DEFAULT_CONFIG_PATH) ? `${DEFAULT_CONFIG_PATH} exists on this machine` : false,
}, async () => {
  const cwd = strfryCwd();
  const h = new StrfryHarness(PLUGIN_BIN, { cwd: cwd.dir, env: pluginEnv(), timeoutMs: 20_000 });
  try {
    const lines = fixtureLines().slice(0, 5);
    for (const line of lines) assert.equal((await h.send(line, idOf(line))).reply.action, 'accept');
    assert.ok((await h.close()).exitedByItself);
    const spoolDir = join(cwd.dir, 'nostr-bt-data', 'spool');
    const warnings = logLines(h.stderr).filter((l) => /no config file/.test(l.msg));
    assert.equal(warnings.length, 1, `logged once: ${h.stderr}`);
    const w = warnings[0]!;
    assert.equal(w.level, 40, 'a warning');
    assert.equal(w.config, null);
    assert.equal(w.spoolDir, spoolDir);
    assert.equal(w.socket, join(cwd.dir, 'nostr-bt-data', 'ingest.sock'));
    assert.equal(w.cwd, cwd.dir);
    assert.ok(w.msg.includes(spoolDir), 'the message itself says where it spools');
    assert.match(w.msg, /NOSTR_BT_CONFIG/);
    assert.equal(h.warnings.length, 0, 'nothing but replies on stdout');
    assert.ok(await waitUntil(() => spoolLines(spoolDir).length === lines.length, 5000), 'spooled where it said');
  } finally {
    await h.close();
    cwd.cleanup();
  }
});

test('a config file found: no "no config" warning, and the start line names the file and the spool', { timeout: 60_000 }, async () => {
  const ws = makeWorkspace();
  try {
    const r = await runPlugin(PLUGIN_BIN, { cwd: ws.dir, env: pluginEnv({ NOSTR_BT_CONFIG: ws.configPath }), input: '' });
    assert.equal(r.code, 0, r.stderr);
    const logs = logLines(r.stderr);
    assert.equal(logs.filter((l) => /no config file/.test(l.msg)).length, 0);
    const start = logs.find((l) => l.msg === 'plugin started');
    assert.ok(start, r.stderr);
    assert.equal(start.config, ws.configPath);
    assert.equal(start.spoolDir, join(ws.dataDir, 'spool'));
  } finally {
    ws.cleanup();
  }
});
