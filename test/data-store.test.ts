// The bundle chunk store (sidecar/seeding/data-store.ts): read-only over a bundle's data file for
// seeding, and with `writable` the file a mirror downloads into (created at its full length,
// chunks written in place), both on real files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BundleDataStore } from '../sidecar/seeding/data-store.js';

type Store = InstanceType<typeof BundleDataStore>;
const put = (s: Store, i: number, b: Buffer) => new Promise<void>((res, rej) => s.put(i, b, (e) => (e ? rej(e) : res())));
const get = (s: Store, i: number, o?: { offset?: number; length?: number }) =>
  new Promise<Buffer>((res, rej) => s.get(i, o ?? null, (e, b) => (e ? rej(e) : res(b!))));
const close = (s: Store) => new Promise<void>((res) => s.close(() => res()));

test('data store: read-only refuses writes and reads chunks, partial chunks and the short last one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-data-store-'));
  try {
    const data = randomBytes(16384 * 2 + 1000);
    const path = join(dir, 'x.data');
    writeFileSync(path, data);
    const s = new BundleDataStore(16384, { length: data.length, dataPath: path });
    await assert.rejects(put(s, 0, Buffer.alloc(16384)), /read-only/);
    assert.deepEqual(await get(s, 1), data.subarray(16384, 32768));
    assert.deepEqual(await get(s, 2), data.subarray(32768));
    assert.deepEqual(await get(s, 0, { offset: 100, length: 50 }), data.subarray(100, 150));
    await assert.rejects(get(s, 3), /out of range/);
    await assert.rejects(get(s, 2, { offset: 0, length: 1001 }), /out of range/);
    await close(s);
    assert.deepEqual(readFileSync(path), data, 'the file is unchanged');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('data store: writable creates the file at its length, writes chunks in any order, refuses out-of-range ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-data-store-'));
  try {
    const data = randomBytes(16384 * 3 + 7);
    const path = join(dir, 'y.data.part');
    writeFileSync(path, 'an older partial download, longer than the torrent'.repeat(2000));
    const s = new BundleDataStore(16384, { length: data.length, dataPath: path, writable: true });
    for (const i of [3, 1, 0, 2]) await put(s, i, data.subarray(i * 16384, (i + 1) * 16384));
    await assert.rejects(put(s, 3, Buffer.alloc(100)), /out of range/, 'past the end');
    await assert.rejects(put(s, 4, Buffer.alloc(1)), /out of range/);
    assert.deepEqual(await get(s, 2), data.subarray(32768, 49152));
    await close(s);
    assert.equal(statSync(path).size, data.length, 'truncated to the torrent length');
    assert.deepEqual(readFileSync(path), data);
    await assert.rejects(get(s, 0), /closed/);
    // Seeded from the same file afterwards.
    const r = new BundleDataStore(16384, { length: data.length, dataPath: path });
    assert.deepEqual(await get(r, 3), data.subarray(49152));
    await close(r);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
