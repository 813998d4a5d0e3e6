// The documented example config is valid and its defaults are the real defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfig } from '../sidecar/common/config.js';
import { DIST } from './testkit/sidecar-process.js';

test('docs/config.example.toml loads and matches the built-in defaults', () => {
  const c = loadConfig({ configPath: join(DIST, '../docs/config.example.toml'), env: {} });
  const d = loadConfig({ env: {}, configPath: undefined, cwd: '/x' });
  assert.equal(c.dataDir, '/var/lib/nostr-bt');
  assert.equal(c.socket.group, 'nostr-bt');
  if (d.configPath === null) {
    for (const section of [
      'spool',
      'plugin',
      'ingest',
      'policy',
      'bundle',
      'bittorrent',
      'media',
      'dht',
      'bridge',
      'reconcile',
      'status',
      'log',
      'service',
      'discovery',
    ] as const) {
      const { dir: _a, ...cs } = c[section] as Record<string, unknown>;
      const { dir: _b, ...ds } = d[section] as Record<string, unknown>;
      assert.deepEqual(cs, ds, `[${section}] in the example shows the defaults`);
    }
  }
});
