// Media references of signed events: NIP-92 imeta, NIP-94 kind 1063, Blossom URLs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { signer } from './testkit/events.js';
import { blossomHash, mediaReferences } from '../sidecar/media/references.js';
import { verifyEvent } from 'nostr-tools/pure';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const A = sha('image a');
const B = sha('video b');
const C = sha('file c');

test('imeta tags: url, x, m, size and fallbacks of each blob; a tag without a hash is ignored', async () => {
  const s = await signer();
  const e = s.sign({
    kind: 1,
    created_at: 1_760_000_000,
    content: `look https://nostr.build/i/pic.jpg and https://cdn.example/v.mp4`,
    tags: [
      [
        'imeta',
        'url https://nostr.build/i/pic.jpg',
        `x ${A.toUpperCase()}`,
        'm image/JPEG',
        'dim 800x600',
        'size 123456',
        'blurhash eVF$^OI:${M{%LRjWBoL',
        'fallback https://mirror.example/a.jpg',
        'fallback https://mirror2.example/a.jpg',
      ],
      ['imeta', 'url https://cdn.example/v.mp4', 'm video/mp4'], // no x, no hash in the path: cannot be verified
      ['imeta', `url https://blossom.example/${B}.mp4`, 'size 99'], // no x: the Blossom path names it
      ['p', s.pubkey],
    ],
  });
  assert.ok(verifyEvent(e));
  assert.deepEqual(mediaReferences(e), [
    {
      sha256: A,
      urls: ['https://nostr.build/i/pic.jpg', 'https://mirror.example/a.jpg', 'https://mirror2.example/a.jpg'],
      mime: 'image/jpeg',
      size: 123456,
    },
    { sha256: B, urls: [`https://blossom.example/${B}.mp4`], size: 99 },
  ]);
});

test('kind 1063 file metadata: url, x, m, size, fallback tags', async () => {
  const s = await signer();
  const e = s.sign({
    kind: 1063,
    created_at: 1_760_000_000,
    content: 'my holiday video',
    tags: [
      ['url', 'https://files.example/holiday.mp4'],
      ['m', 'video/mp4'],
      ['x', C],
      ['ox', sha('original before transcoding')],
      ['size', '5242880'],
      ['fallback', 'https://other.example/holiday.mp4'],
      ['fallback', 'ftp://old.example/holiday.mp4'],
    ],
  });
  assert.ok(verifyEvent(e));
  assert.deepEqual(mediaReferences(e), [
    { sha256: C, urls: ['https://files.example/holiday.mp4', 'https://other.example/holiday.mp4'], mime: 'video/mp4', size: 5242880 },
  ]);
  // The same tags on another kind are not file metadata (only imeta and Blossom URLs count there).
  const note = s.sign({ kind: 1, created_at: 1_760_000_000, content: '', tags: e.tags });
  assert.deepEqual(mediaReferences(note), []);
});

test('Blossom URLs in the content and in url tags, deduplicated with imeta by sha256', async () => {
  const s = await signer();
  const e = s.sign({
    kind: 1,
    created_at: 1_760_000_000,
    content: [
      `first (https://blossom.primal.net/${A}.png).`,
      `again https://cdn.satellite.earth/${A}`,
      `upper case https://b.example/${B.toUpperCase()}.webm, and`,
      `not a blob: https://example.com/${A.slice(0, 63)}.png https://example.com/${A}/index.html https://example.com/x${A}`,
      `no scheme: blossom.example/${C} ftp://x.example/${C} https://user:pw@x.example/${C}`,
    ].join('\n'),
    tags: [
      ['imeta', `url https://blossom.primal.net/${A}.png`, `x ${A}`, 'm image/png'],
      ['url', `https://media.example/blobs/${C}.bin#frag`],
    ],
  });
  assert.ok(verifyEvent(e));
  assert.deepEqual(mediaReferences(e), [
    { sha256: A, urls: [`https://blossom.primal.net/${A}.png`, `https://cdn.satellite.earth/${A}`], mime: 'image/png' },
    { sha256: C, urls: [`https://media.example/blobs/${C}.bin`] },
    { sha256: B, urls: [`https://b.example/${B.toUpperCase()}.webm`] },
  ]);
  assert.equal(blossomHash(`https://b.example/${B}.tar.gz`), null, 'one extension only');
  assert.equal(blossomHash(`https://b.example/${B}.mp4?x=1`), B, 'a query does not change the path');
});

test('imeta with a stated hash that differs from the Blossom path keeps the stated hash', async () => {
  const s = await signer();
  const e = s.sign({ kind: 1, created_at: 1_760_000_000, content: '', tags: [['imeta', `url https://b.example/${B}`, `x ${A}`]] });
  const refs = mediaReferences(e);
  assert.deepEqual(
    refs.map((r) => r.sha256),
    [A],
    'the blob is kept only if its bytes hash to what the event states',
  );
});

test('hostile events: bad sizes, mimes and hashes are dropped, and the work per event is bounded', async () => {
  const s = await signer();
  const many = Array.from({ length: 500 }, (_, i) => `https://b.example/${sha(`blob ${i}`)}`);
  const e = s.sign({
    kind: 1,
    created_at: 1_760_000_000,
    content: many.join(' ') + ` https://b.example/${'a'.repeat(3000)}${A}`,
    tags: [
      ['imeta', `url https://x.example/1.jpg`, `x ${'z'.repeat(64)}`],
      [
        'imeta',
        `url https://x.example/2.jpg`,
        `x ${A}`,
        'size -5',
        'm not a mime',
        ...Array.from({ length: 50 }, (_, i) => `fallback https://f${i}.example/a`),
      ],
      ['imeta'],
      ['imeta', 'url', 'x'],
      ['url'],
    ],
  });
  const refs = mediaReferences(e);
  assert.equal(refs.length, 32, 'at most 32 blobs per event');
  const a = refs.find((r) => r.sha256 === A)!;
  assert.equal(a.urls.length, 8, 'at most 8 URLs per blob');
  assert.equal(a.size, undefined);
  assert.equal(a.mime, undefined);
  assert.ok(refs.every((r) => /^[0-9a-f]{64}$/.test(r.sha256) && r.urls.every((u) => u.length <= 2048)));
  assert.deepEqual(mediaReferences({ kind: 1, tags: [], content: '' }), []);
});
