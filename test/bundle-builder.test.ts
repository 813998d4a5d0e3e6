// Bundles are deterministic: the same events give the same infohash in independent runs.
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bencode from 'bencode';
import { buildBundle, extractBundle, pieceLengthFor, MIN_PIECE_LENGTH, MAX_PIECE_LENGTH } from '../sidecar/bundles/builder.js';
import { canonicalJson } from '../sidecar/formats/nostr-event.js';
import { encodeBundleInfo } from '../sidecar/formats/bundle-info.js';
import { DIST } from './testkit/sidecar-process.js';
import { unsignedEvent, pubkeyN, contentOf } from './testkit/events.js';

const run = promisify(execFile);

/** Runs buildBundle in a fresh process over a deterministic event set; returns its infohash. */
async function infoHashInChildProcess(root: string, shuffleSeed: number): Promise<string> {
  const script = `
    const { buildBundle } = await import(${JSON.stringify(join(DIST, 'sidecar/bundles/builder.js'))});
    const { unsignedEvent, pubkeyN, contentOf } = await import(${JSON.stringify(join(DIST, 'test/testkit/events.js'))});
    const { canonicalJson } = await import(${JSON.stringify(join(DIST, 'sidecar/formats/nostr-event.js'))});
    const events = [];
    for (let i = 0; i < 300; i++) events.push(unsignedEvent(pubkeyN(i % 37), { kind: 1, created_at: 1000 + (i % 11), content: contentOf(100 + i, i) }));
    // Arrival order differs between runs; the bundle must not.
    let s = ${shuffleSeed};
    for (let i = events.length - 1; i > 0; i--) { s = (s * 1103515245 + 12345) & 0x7fffffff; const j = s % (i + 1); [events[i], events[j]] = [events[j], events[i]]; }
    const by = new Map();
    for (const e of events) { if (!by.has(e.pubkey)) by.set(e.pubkey, []); by.get(e.pubkey).push(e); }
    const authors = [...by.keys()].sort().map((pubkey) => ({ pubkey, lines: by.get(pubkey)
      .sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1))
      .map((e) => ({ json: canonicalJson(e), createdAt: e.created_at })) }));
    const b = await buildBundle(${JSON.stringify(root)}, authors);
    process.stdout.write(b.infoHash);
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
  return stdout.trim();
}

test('same events, two independent processes and arrival orders: same infohash', async () => {
  const a = mkdtempSync(join(tmpdir(), 'nostr-bt-bundle-a-'));
  const b = mkdtempSync(join(tmpdir(), 'nostr-bt-bundle-b-'));
  try {
    const ihA = await infoHashInChildProcess(a, 1);
    const ihB = await infoHashInChildProcess(b, 99);
    assert.match(ihA, /^[0-9a-f]{40}$/);
    assert.equal(ihA, ihB);
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});

test('bundle layout: one <pubkey>.jsonl per author in pubkey order, events by created_at then id, info dict has nothing else', async () => {
  const root = mkdtempSync(join(tmpdir(), 'nostr-bt-bundle-'));
  try {
    const evs = [0, 1, 2].flatMap((a) =>
      [3, 1, 2].map((t) => unsignedEvent(pubkeyN(a), { kind: 1, created_at: t, content: contentOf(50, a * 10 + t) })),
    );
    const by = new Map<string, typeof evs>();
    for (const e of evs) by.set(e.pubkey, [...(by.get(e.pubkey) ?? []), e]);
    const authors = [...by.keys()].sort();
    const built = await buildBundle(
      root,
      authors.map((pubkey) => ({
        pubkey,
        lines: by
          .get(pubkey)!
          .sort((x, y) => x.created_at - y.created_at)
          .map((e) => ({ json: canonicalJson(e), createdAt: e.created_at })),
      })),
    );
    assert.ok(built);
    assert.equal(built.name, 'nostr-bt-1-3-9');
    assert.deepEqual(
      readdirSync(root).sort(),
      [`${built.infoHash}.data`, `${built.infoHash}.torrent`],
      'one data file per bundle, no temporary files',
    );
    const dataDir = await extractBundle(root, built.infoHash, join(root, 'extracted'));
    assert.deepEqual(
      readdirSync(dataDir).sort(),
      authors.map((a) => `${a}.jsonl`),
    );
    for (const a of authors) {
      const lines = readFileSync(join(dataDir, `${a}.jsonl`), 'utf8').split('\n');
      assert.equal(lines.pop(), '', 'every line ends with a newline');
      assert.deepEqual(
        lines.map((l) => (JSON.parse(l) as { created_at: number }).created_at),
        [1, 2, 3],
      );
    }
    const t = bencode.decode(readFileSync(built.torrentPath));
    assert.deepEqual(Object.keys(t), ['info'], 'no announce, no creation date, no comment');
    assert.deepEqual(Object.keys(t.info).sort(), ['files', 'name', 'piece length', 'pieces']);
    assert.equal(t.info['piece length'], MIN_PIECE_LENGTH);
    // The file is exactly the canonical bencoding of {info}, and the infohash is that info's SHA-1.
    assert.ok(Buffer.from(bencode.encode(t)).equals(readFileSync(built.torrentPath)));
    assert.equal(createHash('sha1').update(bencode.encode(t.info)).digest('hex'), built.infoHash);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('piece length is a pure function of size: 16 KiB up to 32 MiB, doubling, at most 4 MiB', () => {
  assert.equal(pieceLengthFor(1), MIN_PIECE_LENGTH);
  assert.equal(pieceLengthFor(32 * 1024 * 1024), MIN_PIECE_LENGTH);
  assert.equal(pieceLengthFor(32 * 1024 * 1024 + 1), 2 * MIN_PIECE_LENGTH);
  assert.equal(pieceLengthFor(1e13), MAX_PIECE_LENGTH);
});

test('the info dict encoder gives exactly bencode.encode of the protocol dict', () => {
  const cases = [
    { files: [{ pubkey: pubkeyN(1), length: 1 }], name: 'nostr-bt-1-1-1', pieceLength: 16384, pieces: Buffer.alloc(20, 1) },
    {
      files: Array.from({ length: 3000 }, (_, i) => ({ pubkey: pubkeyN(i), length: 1 + i * 977 })).sort((a, b) =>
        a.pubkey < b.pubkey ? -1 : 1,
      ),
      name: 'nostr-bt-1700000000-1700003599-123456',
      pieceLength: 4 * 1024 * 1024,
      pieces: Buffer.from(Array.from({ length: 20 * 700 }, (_, i) => (i * 31) & 0xff)),
    },
    { files: [{ pubkey: 'é-non-ascii', length: 2 ** 40 }], name: 'ünï', pieceLength: 16384, pieces: Buffer.alloc(0) },
  ];
  for (const c of cases) {
    const viaLibrary = bencode.encode({
      files: c.files.map((f) => ({ length: f.length, path: [`${f.pubkey}.jsonl`] })),
      name: c.name,
      'piece length': c.pieceLength,
      pieces: c.pieces,
    });
    assert.deepEqual(encodeBundleInfo(c), Buffer.from(viaLibrary));
  }
  assert.throws(() => encodeBundleInfo({ ...cases[0]!, files: [{ pubkey: pubkeyN(1), length: 1.5 }] }), /not an integer/);
});
