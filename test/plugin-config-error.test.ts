// A broken config file (TOML syntax error, unknown key, bad value) with the plugin run as strfry
// runs it. With no plugin.inner there is nothing to enforce: every event is accepted, archived
// with what can still be read (the configured spool), and the error is logged loudly. With an
// inner policy (or no telling) every event is rejected, as before: a policy is never bypassed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StrfryHarness } from './testkit/strfry-harness.js';
import { SidecarProcess, PLUGIN_BIN, FIXTURES, DIST, LOOPBACK_DEFAULTS } from './testkit/sidecar-process.js';
import { pluginEnv, logLines, spoolLines, filesUnder } from './testkit/plugin-run.js';
import { looksLikeInner, parsedWrapsInner, repairToml, textWrapsInner, keepValidKeys } from '../plugin/config-salvage.js';
import { stringify } from 'smol-toml';

const fixtureLines = () => readFileSync(join(FIXTURES, 'strfry-plugin-input.jsonl'), 'utf8').trim().split('\n');
const idOf = (line: string) => (JSON.parse(line) as { event: { id: string } }).event.id;

function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-test-config-error-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Feeds the fixture lines through the plugin as strfry does; returns the actions and stderr. */
async function feed(
  configPath: string,
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{ actions: string[]; msgs: (string | undefined)[]; stderr: string }> {
  const h = new StrfryHarness(PLUGIN_BIN, { cwd, env: pluginEnv({ NOSTR_BT_CONFIG: configPath, ...env }), timeoutMs: 20_000 });
  try {
    const actions: string[] = [];
    const msgs: (string | undefined)[] = [];
    for (const line of fixtureLines()) {
      const { reply } = await h.send(line, idOf(line));
      actions.push(reply.action);
      msgs.push(reply.msg);
    }
    assert.ok((await h.close()).exitedByItself);
    assert.equal(h.warnings.length, 0, 'nothing but replies on stdout');
    return { actions, msgs, stderr: h.stderr };
  } finally {
    await h.close();
  }
}

function assertLoudAccept(stderr: string, mentions: RegExp): void {
  const loud = logLines(stderr).filter((l) => l.level >= 50 && /ACCEPTING EVERY EVENT/.test(l.msg));
  assert.equal(loud.length, 1, `one loud error line at start: ${stderr}`);
  assert.match(JSON.stringify(loud[0]), mentions, 'it says what is wrong');
}

test('a typo in [bundle] with no inner policy: every event accepted and spooled where the file says; the sidecar archives them once the file is fixed', {
  timeout: 120_000,
}, async () => {
  const t = tempDir();
  const dataDir = join(t.dir, 'data');
  const good = { dataDir, ...LOOPBACK_DEFAULTS, dht: { ...LOOPBACK_DEFAULTS.dht, enabled: false } };
  const configPath = join(t.dir, 'config.toml');
  writeFileSync(configPath, stringify(good) + '\n[bundle]\nwindowSecond = 30\n');
  const cwd = join(t.dir, 'strfry-cwd');
  mkdirSync(cwd);
  const sidecar = new SidecarProcess(configPath, dataDir);
  try {
    const { actions, stderr } = await feed(configPath, cwd);
    assert.deepEqual(
      actions,
      fixtureLines().map(() => 'accept'),
      'the relay keeps taking writes',
    );
    assertLoudAccept(stderr, /bundle\.windowSecond/);
    assert.deepEqual(spoolLines(join(dataDir, 'spool')), fixtureLines(), 'the raw lines, in the configured spool');
    assert.deepEqual(filesUnder(cwd), [], "nothing in strfry's working directory");
    // The operator fixes the typo and starts the sidecar: the spool is drained into the index.
    writeFileSync(configPath, stringify(good) + '\n[bundle]\nwindowSeconds = 30\n');
    await sidecar.start(30_000);
    const s = await sidecar.waitFor((st) => st.spool.files === 0 && st.events.received === fixtureLines().length, 60_000);
    assert.equal(s.events.received, fixtureLines().length);
  } finally {
    await sidecar.kill9();
    t.cleanup();
  }
});

test('broken configs with no inner policy: accept everything, spool into the configured (or default) spool, log loudly', {
  timeout: 180_000,
}, async () => {
  const t = tempDir();
  try {
    const cases: {
      name: string;
      text: (d: string) => string;
      spool: (d: string) => string;
      mentions: RegExp;
      env?: (d: string) => NodeJS.ProcessEnv;
    }[] = [
      {
        name: 'bad value, spool.dir relative to dataDir',
        text: (d) => `dataDir = "${d}/data"\n[spool]\ndir = "custom-spool"\n[bundle]\nwindowSeconds = "sixty"\n`,
        spool: (d) => `${d}/data/custom-spool`,
        mentions: /bundle\.windowSeconds/,
      },
      {
        name: 'TOML syntax error in the same table as spool.dir, above it',
        text: (d) => `dataDir = "${d}/data"\n[spool]\nmaxBytes = 1O24\ndir = "${d}/elsewhere"\n[plugin]\ninner = ""\n`,
        spool: (d) => `${d}/elsewhere`,
        mentions: /not valid TOML.*line 3/s,
      },
      {
        name: 'a broken table header: its keys are not taken for the table above',
        text: (d) => `dataDir = "${d}/data"\n[spool]\nmaxBytes = 100000000\n[bundle\ndir = "${d}/bundles-not-spool"\n`,
        spool: (d) => `${d}/data/spool`,
        mentions: /line 4/,
      },
      {
        name: 'the dataDir line itself is broken: the default, relative to the config file',
        text: () => `dataDir = /var/lib/nostr-bt\n[bundle]\nwindowSeconds = 30\n`,
        spool: (d) => `${d}/nostr-bt-data/spool`,
        mentions: /line 1/,
      },
      {
        name: 'docs/config.example.toml (inner = "") with a typo in [bundle]',
        text: (d) => {
          const example = readFileSync(join(DIST, '../docs/config.example.toml'), 'utf8');
          const edited = example
            .replace('path = "/run/nostr-bt/ingest.sock"', `path = "${d}/ingest.sock"`)
            .replace('windowSeconds = 60', 'windowSecnds = 60');
          assert.notEqual(edited, example);
          assert.match(edited, /^inner = ""/m, 'the example wraps nothing');
          return edited;
        },
        env: (d) => ({ NOSTR_BT_DATA_DIR: `${d}/env-data` }),
        spool: (d) => `${d}/env-data/spool`,
        mentions: /bundle\.windowSecnds/,
      },
    ];
    for (const [i, c] of cases.entries()) {
      const d = join(t.dir, `case${i}`);
      mkdirSync(d);
      const configPath = join(d, 'config.toml');
      writeFileSync(configPath, c.text(d));
      const { actions, stderr } = await feed(configPath, d, c.env?.(d));
      assert.deepEqual(
        actions,
        fixtureLines().map(() => 'accept'),
        `${c.name}: every event accepted`,
      );
      assertLoudAccept(stderr, c.mentions);
      assert.deepEqual(
        spoolLines(c.spool(d)),
        fixtureLines(),
        `${c.name}: spooled into ${c.spool(d)}; the case dir holds ${filesUnder(d).join(' ')}`,
      );
    }
  } finally {
    t.cleanup();
  }
});

test('broken configs that wrap (or may wrap) an inner policy: every event rejected, nothing spooled, as before', {
  timeout: 180_000,
}, async () => {
  const t = tempDir();
  try {
    const cases: { name: string; text?: string; reason: RegExp }[] = [
      {
        name: 'valid plugin.inner, a typo elsewhere',
        text: '[plugin]\ninner = "/bin/cat"\n[bundle]\nwindowSecond = 5\n',
        reason: /wraps a write policy/,
      },
      {
        name: 'TOML syntax error elsewhere, plugin.inner set',
        text: '[plugin]\ninner = "/usr/local/bin/policy"\n[bundle\nwindowSeconds = 5\n',
        reason: /wraps a write policy/,
      },
      { name: 'syntax error on the inner line itself', text: '[plugin]\ninner = /usr/local/bin/policy\n', reason: /wraps a write policy/ },
      { name: 'misspelt inner key', text: '[plugin]\niner = "/usr/local/bin/policy"\n', reason: /wraps a write policy/ },
      { name: 'inner at top level (no [plugin])', text: 'inner = "/usr/local/bin/policy"\n', reason: /wraps a write policy/ },
      { name: 'unreadable file (a directory)', reason: /cannot be read/ },
    ];
    for (const [i, c] of cases.entries()) {
      const d = join(t.dir, `case${i}`);
      mkdirSync(d);
      const configPath = join(d, 'config.toml');
      if (c.text === undefined) mkdirSync(configPath);
      else writeFileSync(configPath, `dataDir = "${d}/data"\n` + c.text);
      const { actions, msgs, stderr } = await feed(configPath, d);
      assert.deepEqual(
        actions,
        fixtureLines().map(() => 'reject'),
        `${c.name}: every event rejected`,
      );
      assert.ok(
        msgs.every((m) => m === 'error: relay write policy is misconfigured'),
        c.name,
      );
      const fatal = logLines(stderr).filter((l) => l.level === 60);
      assert.equal(fatal.length, 1, `${c.name}: ${stderr}`);
      assert.match(String(fatal[0]!.reason), c.reason, c.name);
      assert.deepEqual(filesUnder(d), ['config.toml'], `${c.name}: nothing spooled, no data directory made`);
    }
  } finally {
    t.cleanup();
  }
});

test('config-salvage: which keys name a policy, comments, empty values, repairs', () => {
  for (const k of ['inner', 'Inner', 'iner', 'innr', 'innner', 'innerCommand', 'plugin.inner']) assert.ok(looksLikeInner(k), k);
  for (const k of ['innerTimeoutMs', 'innerFailMode', 'innerFailMessage', 'dir', 'mode', 'enabled', 'maxUnacked'])
    assert.ok(!looksLikeInner(k), k);

  assert.ok(!parsedWrapsInner({ plugin: { inner: '', innerTimeoutMs: 100 } }), 'inner = "" wraps nothing');
  assert.ok(parsedWrapsInner({ plugin: { inner: '/x' } }));
  assert.ok(parsedWrapsInner({ plugin: { inner: 5 } }), 'a wrong type for inner itself: no telling');
  assert.ok(parsedWrapsInner({ plugins: [{ inner: '/x' }] }), 'under any table');
  assert.ok(!parsedWrapsInner({ plugin: { innerTimeoutMS: 5000 } }), 'a misspelt number setting names no command');

  assert.ok(!textWrapsInner('[plugin\ninner = ""  # none\ninnerTimeoutMs = 5000\n'));
  assert.ok(!textWrapsInner('[plugin\n# inner = "/usr/bin/policy"\n'), 'a commented-out line');
  assert.ok(!textWrapsInner('[plugin\nforwardSourceTypes = ["*"] # inner = "/x"\n'), 'a trailing comment');
  assert.ok(textWrapsInner('[plugin\ninner = "/usr/bin/policy"\n'));
  assert.ok(textWrapsInner('plugin = { inner = "/usr/bin/policy" }\n[x'));
  assert.ok(textWrapsInner("plugin.inner = '/usr/bin/policy'\n[x"));
  assert.ok(textWrapsInner('[plugin]\ninner =\n'), 'no value: no telling');
  assert.ok(textWrapsInner('[plugin]\nInner = "/x"\n[x'));

  const header = repairToml('[spool]\nmaxBytes = 5\n[bundle\ndir = "/b"\n[dht]\nenabled = false\n');
  assert.deepEqual(header.unreadableLines, [3]);
  assert.deepEqual({ ...(header.raw.spool as object) }, { maxBytes: 5 }, "the broken header's keys do not join [spool]");
  assert.deepEqual({ ...(header.raw.dht as object) }, { enabled: false });
  const array = repairToml('dataDir = "/d"\n[policy]\ndenyKinds = [1, 2\n[dht]\nenabled = false\n');
  assert.equal(array.raw.dataDir, '/d', 'an unclosed array loses what it swallowed, not what came before');

  const kept = keepValidKeys({ dataDir: '/d', spool: { dir: 's', maxBytes: -1 }, bundel: {}, plugin: 'x' });
  assert.deepEqual(kept.kept, { dataDir: '/d', spool: { dir: 's' } });
  assert.deepEqual(kept.ignored.sort(), ['bundel', 'plugin', 'spool.maxBytes']);
});
