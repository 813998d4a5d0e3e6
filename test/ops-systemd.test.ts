// The shipped systemd unit and its install script: the directives the sidecar relies on, a real
// install into a staging root (DESTDIR), and systemd's own checker on the installed unit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DIST, SIDECAR_BIN } from './testkit/sidecar-process.js';
import { loadConfig } from '../sidecar/common/config.js';

const run = promisify(execFile);
const ROOT = join(DIST, '..');
const UNIT = join(ROOT, 'scripts/systemd/nostr-bt-sidecar.service');
const INSTALL = join(ROOT, 'scripts/install-systemd.sh');

/** [Service] directives → values (a directive given twice keeps every value). */
function serviceSection(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let inService = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) inService = line === '[Service]';
    else if (inService && line && !line.startsWith('#')) {
      const i = line.indexOf('=');
      const k = line.slice(0, i);
      out.set(k, [...(out.get(k) ?? []), line.slice(i + 1)]);
    }
  }
  return out;
}

function hasSystemdAnalyze(): boolean {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('unit: Type=notify with a watchdog, restart on failure, own user, runtime/state dirs, hardening Node tolerates', () => {
  const s = serviceSection(readFileSync(UNIT, 'utf8'));
  const one = (k: string) => s.get(k)?.[0];
  assert.equal(one('Type'), 'notify');
  assert.equal(one('NotifyAccess'), 'main', 'only the sidecar itself (it sends from its own pid) may notify');
  assert.match(one('WatchdogSec') ?? '', /^\d+$/);
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('User'), 'nostr-bt');
  assert.equal(one('Group'), 'nostr-bt');
  assert.equal(one('RuntimeDirectory'), 'nostr-bt');
  assert.equal(one('StateDirectory'), 'nostr-bt');
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  for (const [k, v] of [
    ['ProtectSystem', 'strict'],
    ['ProtectHome', 'true'],
    ['PrivateTmp', 'true'],
    ['NoNewPrivileges', 'true'],
  ]) {
    assert.equal(one(k!), v, k);
  }
  assert.ok(!s.has('MemoryDenyWriteExecute'), "MemoryDenyWriteExecute breaks V8's JIT");
  // The example config's paths are the ones the unit makes writable.
  const example = loadConfig({ configPath: join(ROOT, 'docs/config.example.toml'), env: {} });
  assert.equal(example.dataDir, `/var/lib/${one('StateDirectory')}`);
  assert.equal(example.socket.path, `/run/${one('RuntimeDirectory')}/ingest.sock`);
  // systemd must not SIGKILL before the sidecar's own bounded stop has run out.
  assert.ok(Number(one('TimeoutStopSec')) > example.service.stopTimeoutSeconds);
});

test('install-systemd.sh into a staging root: config and unit placed, ExecStart rewritten, an edited config kept; systemd-analyze accepts the unit', async (t) => {
  const dest = mkdtempSync(join(tmpdir(), 'nostr-bt-install-'));
  try {
    const env = { ...process.env, DESTDIR: dest, NOSTR_BT_SIDECAR_BIN: SIDECAR_BIN };
    await run('sh', [INSTALL, '--no-start'], { env });
    const unit = join(dest, 'etc/systemd/system/nostr-bt-sidecar.service');
    const config = join(dest, 'etc/nostr-bt/config.toml');
    assert.equal(readFileSync(config, 'utf8'), readFileSync(join(ROOT, 'docs/config.example.toml'), 'utf8'));
    const installed = serviceSection(readFileSync(unit, 'utf8'));
    assert.deepEqual(installed.get('ExecStart'), [SIDECAR_BIN]);

    writeFileSync(config, 'dataDir = "/srv/nostr-bt"\n');
    const again = await run('sh', [INSTALL, '--no-start'], { env });
    assert.match(again.stdout, /keeping/);
    assert.equal(readFileSync(config, 'utf8'), 'dataDir = "/srv/nostr-bt"\n', 'an upgrade keeps the operator config');

    await assert.rejects(run('sh', [INSTALL, '--bogus'], { env }), /unknown option --bogus/);
    await assert.rejects(run('sh', [INSTALL], { env: { ...env, NOSTR_BT_SIDECAR_BIN: '', PATH: '/usr/bin:/bin' } }), /not on PATH/);

    if (!hasSystemdAnalyze()) {
      t.diagnostic('systemd-analyze not installed: unit syntax not checked by systemd');
      return;
    }
    const verify = await run('systemd-analyze', ['verify', unit]);
    assert.equal(verify.stderr.trim(), '', 'systemd-analyze verify reports nothing');
    const security = await run('systemd-analyze', ['security', '--offline=true', unit]).catch((e: { stdout: string }) => e);
    const exposure = /Overall exposure level for [^:]+: ([\d.]+)/.exec(security.stdout);
    assert.ok(exposure, security.stdout.slice(-500));
    assert.ok(Number(exposure[1]) < 3, `systemd-analyze security exposure ${exposure[1]}: keep the hardening`);
    t.diagnostic(`systemd-analyze security --offline: exposure ${exposure[1]}`);
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
});
