// install-systemd.sh enables the service but starts it only when asked (--start), so the operator
// edits the config first; --no-start names the default; DESTDIR stages files only. --dry-run
// runs the script's real decisions and prints the system-changing commands instead of running
// them (no users are created, no systemctl runs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DIST, SIDECAR_BIN } from './testkit/sidecar-process.js';

const run = promisify(execFile);
const ROOT = join(DIST, '..');
const INSTALL = join(ROOT, 'scripts/install-systemd.sh');
const env = { ...process.env, NOSTR_BT_SIDECAR_BIN: SIDECAR_BIN, DESTDIR: '' };

async function install(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    return { code: 0, ...(await run('sh', [INSTALL, ...args], { env: { ...env, ...extraEnv } })) };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const STARTS = /systemctl (re)?start nostr-bt-sidecar/;

test('install-systemd.sh: enables without starting by default and with --no-start; --start starts; the last of the two wins', async () => {
  for (const args of [[], ['--no-start'], ['--start', '--no-start']]) {
    const r = await install([...args, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^would run: systemctl daemon-reload$/m);
    assert.match(r.stdout, /^would run: systemctl enable nostr-bt-sidecar$/m);
    assert.doesNotMatch(r.stdout, new RegExp(`would run: ${STARTS.source}`), `${args.join(' ') || '(no flag)'}: not started`);
    assert.match(
      r.stdout,
      /enabled, not started: edit \/etc\/nostr-bt\/config\.toml \(docs\/config\.md\), then: systemctl start nostr-bt-sidecar/,
    );
  }
  for (const args of [['--start'], ['--no-start', '--start']]) {
    const r = await install([...args, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^would run: systemctl enable nostr-bt-sidecar\nwould run: systemctl restart nostr-bt-sidecar$/m,
      args.join(' '),
    );
  }
});

test('install-systemd.sh: DESTDIR stages the files and runs no systemctl; --start with DESTDIR is refused (exit 2, nothing written); --help names the options', async () => {
  const dest = mkdtempSync(join(tmpdir(), 'nostr-bt-install-'));
  try {
    const staged = await install([], { DESTDIR: dest });
    assert.equal(staged.code, 0, staged.stderr);
    assert.ok(existsSync(join(dest, 'etc/systemd/system/nostr-bt-sidecar.service')));
    assert.equal(
      readFileSync(join(dest, 'etc/nostr-bt/config.toml'), 'utf8'),
      readFileSync(join(ROOT, 'docs/config.example.toml'), 'utf8'),
    );
    assert.doesNotMatch(staged.stdout, /systemctl|enabled/);

    const other = mkdtempSync(join(tmpdir(), 'nostr-bt-install-'));
    try {
      const refused = await install(['--start'], { DESTDIR: other });
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /--start cannot start a service in a staging root/);
      assert.deepEqual(readdirSync(other), []);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }

    const help = await install(['--help']);
    assert.equal(help.code, 0);
    for (const word of ['--start', '--no-start', '--dry-run', 'DESTDIR', '--strfry-user'])
      assert.ok(help.stdout.includes(word), `--help names ${word}`);
    assert.doesNotMatch(help.stdout, /set -eu/);
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
});

test("the operator guide's systemd section (and README's) documents --start, --no-start and DESTDIR", () => {
  const guide = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
  const section = guide.slice(guide.indexOf('## 2. The systemd service'), guide.indexOf('## 3.'));
  assert.ok(section.length > 100, 'docs/operations.md has a systemd section');
  for (const word of ['--start', '--no-start', 'DESTDIR']) assert.ok(section.includes(word), `the systemd section mentions ${word}`);
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const short = readme.slice(readme.indexOf('**The systemd service.**'), readme.indexOf('**Enable the plugin'));
  for (const word of ['--start', '--no-start', 'DESTDIR']) assert.ok(short.includes(word), `README's systemd step mentions ${word}`);
});
