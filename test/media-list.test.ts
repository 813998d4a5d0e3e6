// The media list format and the pointer's `m` (docs/protocol.md §7, §8 "Media list"): the list is
// a pure function of its entries (sorted, deduplicated, exact bytes), its parser refuses anything
// else; `m` rides on page 0 only and every page stays within BEP-44's 1000 bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { authorPages, decodeAuthorPage, vSize, MAX_V_BYTES } from '../sidecar/formats/pointer-item.js';
import { BadMediaList, mediaListBytes, parseMediaList, type MediaListEntry } from '../sidecar/formats/media-list.js';

const hex = (n: number) => randomBytes(n).toString('hex');

test('media list: sorted by sha256, one line each, same entries give the same bytes', () => {
  const entries: MediaListEntry[] = Array.from({ length: 50 }, (_, i) => ({ sha256: hex(32), ih: hex(20), size: i * 1000 + 1 }));
  const a = mediaListBytes(entries);
  const b = mediaListBytes([...entries].reverse().concat(entries.slice(0, 5)));
  assert.ok(a.equals(b), 'order and duplicates do not matter');
  const back = parseMediaList(a);
  assert.deepEqual(
    back,
    [...entries].sort((x, y) => (x.sha256 < y.sha256 ? -1 : 1)),
  );
  assert.equal(a.toString().split('\n')[0], `{"ih":"${back[0]!.ih}","sha256":"${back[0]!.sha256}","size":${back[0]!.size}}`);
  assert.deepEqual(parseMediaList(Buffer.alloc(0)), []);
  assert.throws(() => mediaListBytes([{ sha256: 'x', ih: hex(20), size: 1 }]));
});

test('media list parser refuses anything but the exact lines, in order', () => {
  const e1 = { sha256: '0'.repeat(64), ih: 'a'.repeat(40), size: 5 };
  const e2 = { sha256: '1'.repeat(64), ih: 'b'.repeat(40), size: 6 };
  const good = mediaListBytes([e1, e2]).toString();
  const bad = [
    good.slice(0, -1),
    good.split('\n').reverse().join('\n').slice(1) + '\n',
    good + good,
    good.replace('"size":5', '"size":05'),
    good.replace('"size":5', '"size":-5'),
    good.replace('"size":5', '"size":99999999999999999'),
    good.replace('aaaa', 'AAAA'),
    good.replace('{"ih"', '{ "ih"'),
    good.replace('"size":5}', '"size":5,"x":1}'),
    good + '\n',
    '\u0000' + good,
  ];
  for (const b of bad) assert.throws(() => parseMediaList(Buffer.from(b)), BadMediaList, JSON.stringify(b.slice(0, 80)));
  assert.throws(() => parseMediaList(Buffer.from(good), 1), BadMediaList);
});

test('pointer: m on page 0 only, decoded back, every page within 1000 bytes', () => {
  const m = hex(20);
  for (const n of [0, 1, 45, 46, 47, 48, 200]) {
    const ihs = Array.from({ length: n }, () => hex(20));
    const pages = authorPages(ihs, m);
    const seen: string[] = [];
    pages.forEach((p, i) => {
      assert.ok(vSize(p) <= MAX_V_BYTES, `n=${n} page ${i}: ${vSize(p)} bytes`);
      const d = decodeAuthorPage(p);
      assert.equal(d.mediaList, i === 0 ? m : undefined, `n=${n} page ${i}`);
      seen.push(...d.infoHashes);
    });
    assert.deepEqual(seen, ihs, `n=${n}: every infohash once, in order`);
    const plain = authorPages(ihs);
    assert.equal(decodeAuthorPage(plain[0]).mediaList, undefined);
  }
  assert.throws(() => decodeAuthorPage({ v: 1, b: Buffer.alloc(0), n: 0, pg: 1, m: Buffer.alloc(19) }), /m is not 20 bytes/);
  assert.throws(() => authorPages([], 'abcd'), /20 bytes/);
});
