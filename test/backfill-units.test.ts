// Backfill building blocks: the line splitter (offsets, chunk boundaries, runaway lines) and the
// created_at scanner, against the obvious reference (split + JSON.parse).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, type OversizedLine } from '../sidecar/backfill/line-splitter.js';
import { createdAtOf } from '../sidecar/backfill/created-at.js';
import { pluginLine, unsignedEvent, pubkeyN } from './testkit/events.js';
import { canonicalJson } from '../sidecar/formats/nostr-event.js';

function splitAll(data: Buffer, chunkSizes: number[], max: number, start = 0) {
  const over: OversizedLine[] = [];
  const s = new LineSplitter(max, (l) => over.push({ ...l }), start);
  const lines: string[] = [];
  const ends: number[] = [];
  let off = 0;
  let i = 0;
  while (off < data.length) {
    const n = chunkSizes[i++ % chunkSizes.length]!;
    const r = s.push(data.subarray(off, off + n));
    lines.push(...r.lines.map((b) => b.toString('utf8')));
    ends.push(...r.ends);
    off += n;
  }
  const r = s.end();
  lines.push(...r.lines.map((b) => b.toString('utf8')));
  ends.push(...r.ends);
  return { lines, ends, over, count: s.lineCount };
}

test('line splitter: same lines and end offsets whatever the chunking', () => {
  const text = 'alpha\nbeta ünïcødé ✓\n\n{"x":1}\r\nlast without newline';
  const data = Buffer.from(text);
  const expected = text.split('\n');
  const expectedEnds: number[] = [];
  let off = 0;
  for (const l of expected) {
    off += Buffer.byteLength(l) + 1;
    expectedEnds.push(Math.min(off, data.length));
  }
  for (const sizes of [[1], [2, 3], [7], [data.length], [5, 1, 64]]) {
    const r = splitAll(data, sizes, 1000, 100);
    assert.deepEqual(r.lines, expected, `chunks ${sizes}`);
    assert.deepEqual(
      r.ends,
      expectedEnds.map((e) => e + 100),
      `ends with chunks ${sizes}`,
    );
    assert.equal(r.over.length, 0);
  }
});

test('line splitter: a line over the limit is skipped and reported once, within or across chunks', () => {
  const big = 'x'.repeat(50);
  const text = `ok1\n${big}\nok2\n${big}`;
  for (const sizes of [[3], [11], [text.length]]) {
    const r = splitAll(Buffer.from(text), sizes, 20);
    assert.deepEqual(r.lines, ['ok1', 'ok2'], `chunks ${sizes}`);
    assert.deepEqual(
      r.over.map((o) => [o.lineNo, o.offset, o.bytes]),
      [
        [2, 4, 50],
        [4, 59, 50],
      ],
      `chunks ${sizes}`,
    );
    assert.equal(r.count, 4);
  }
});

test('created_at scanner agrees with JSON.parse on events, plugin lines and odd lines', () => {
  const e = unsignedEvent(pubkeyN(1), { kind: 1, created_at: 1700000123, content: 'says "created_at":5, and \\"created_at\\":6' });
  const cases: [string, number | null][] = [
    [canonicalJson(e), 1700000123],
    [pluginLine(e), 1700000123],
    ['{"created_at" : 42, "kind": 1}', 42],
    ['{"kind":1,"created_at":17}', 17],
    ['{"created_at":-5}', null],
    ['{"created_at":"12"}', null],
    ['not json "created_at":12', null],
    ['{"a":{"created_at":1},"created_at":2}', 2],
    ['', null],
  ];
  for (const [line, want] of cases) assert.equal(createdAtOf(Buffer.from(line)), want, line);
});
