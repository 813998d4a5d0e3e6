// docs/config.md documents every key of the config schema with its real default and allowed values
// (and which keys SIGHUP applies), and nothing that is not a key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configKeys } from '../sidecar/common/config-keys.js';
import { RELOADABLE_KEYS } from '../sidecar/ops/reload.js';
import { DIST } from './testkit/sidecar-process.js';

interface Row {
  default: string;
  allowed: string;
  sighup: string;
  meaning: string;
}

function documentedRows(): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const line of readFileSync(join(DIST, '../docs/config.md'), 'utf8').split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    assert.equal(cells.length, 5, `five columns: ${line}`);
    const [key, def, allowed, sighup, meaning] = cells.map((c, i) => (i < 2 ? c.replace(/^`|`$/g, '') : c)) as [
      string,
      string,
      string,
      string,
      string,
    ];
    assert.ok(!rows.has(key), `${key} documented twice`);
    rows.set(key, { default: def, allowed, sighup, meaning });
  }
  return rows;
}

test('docs/config.md: every schema key with its default, allowed values and SIGHUP behaviour; no stale keys', () => {
  const rows = documentedRows();
  const keys = configKeys();
  assert.ok(keys.length > 40, 'the schema walk found the keys');
  for (const k of keys) {
    const sighup = RELOADABLE_KEYS.includes(k.key) ? '✓' : '';
    const expected = `| \`${k.key}\` | \`${k.default}\` | ${k.allowed} |${sighup ? ` ${sighup} ` : ' '}| <meaning> |`;
    const row = rows.get(k.key);
    assert.ok(row, `docs/config.md lacks ${k.key}; add under its section:\n${expected}`);
    assert.equal(row.default, k.default, `${k.key}: default; expected row:\n${expected}`);
    assert.equal(row.allowed, k.allowed, `${k.key}: allowed values; expected row:\n${expected}`);
    assert.equal(row.sighup, sighup, `${k.key}: SIGHUP column`);
    assert.ok(row.meaning.length > 10, `${k.key}: say what it means`);
  }
  const known = new Set(keys.map((k) => k.key));
  for (const documented of rows.keys())
    assert.ok(known.has(documented), `docs/config.md documents ${documented}, which is not a config key`);
});
