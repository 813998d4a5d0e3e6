import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../sidecar/common/config.js';

function withFile(text: string, fn: (path: string, dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-cfg-'));
  const path = join(dir, 'config.toml');
  writeFileSync(path, text);
  try {
    fn(path, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('no config at all: defaults, data under ./nostr-bt-data', () => {
  const c = loadConfig({ env: {}, cwd: '/srv/x' });
  assert.equal(c.configPath === null || c.configPath === '/etc/nostr-bt/config.toml', true);
  if (c.configPath === null) {
    assert.equal(c.dataDir, '/srv/x/nostr-bt-data');
    assert.equal(c.socket.path, '/srv/x/nostr-bt-data/ingest.sock');
    assert.equal(c.socket.mode, 0o660);
    assert.equal(c.spool.dir, '/srv/x/nostr-bt-data/spool');
    assert.equal(c.status.listen, '127.0.0.1:9477');
  }
});

test('relative dataDir resolves against the config file; env and flags override', () => {
  withFile('dataDir = "state"\n[socket]\nmode = "0600"\n', (path, dir) => {
    const c = loadConfig({ configPath: path, env: {} });
    assert.equal(c.dataDir, join(dir, 'state'));
    assert.equal(c.socket.mode, 0o600);
    const c2 = loadConfig({ env: { NOSTR_BT_CONFIG: path, NOSTR_BT_DATA_DIR: '/var/lib/x' } });
    assert.equal(c2.dataDir, '/var/lib/x');
    assert.equal(c2.socket.path, '/var/lib/x/ingest.sock');
  });
});

test('bad values and unknown keys are named in the error', () => {
  withFile('[spool]\nmaxBytes = -5\n[plugin]\ninnerFailMode = "maybe"\n[ingest]\nbogus = 1\n', (path) => {
    assert.throws(
      () => loadConfig({ configPath: path, env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /spool\.maxBytes/);
        assert.match(err.message, /plugin\.innerFailMode/);
        assert.match(err.message, /bogus/);
        return true;
      },
    );
  });
  withFile('this is = = not toml', (path) => {
    assert.throws(() => loadConfig({ configPath: path, env: {} }), /not valid TOML/);
  });
  assert.throws(() => loadConfig({ configPath: '/nonexistent/x.toml', env: {} }), /cannot read config file/);
  withFile('[status]\nlisten = "everywhere"\n', (path) => {
    assert.throws(() => loadConfig({ configPath: path, env: {} }), /status\.listen: .*host:port/);
  });
});
