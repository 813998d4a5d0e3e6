// The ingest path's one-pass validation + canonical serialization must equal the plain
// definitions (JSON.stringify of the NIP-01 array for the id, of the sorted object for the bytes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalJson,
  computeEventId,
  InvalidEvent,
  jsonString,
  validatedEventJson,
  type NostrEvent,
} from '../sidecar/formats/nostr-event.js';
import { prng, pubkeyN, unsignedEvent } from './testkit/events.js';

const awkward = [
  '',
  'plain ascii',
  'quotes " and \\ backslashes / slashes',
  'controls \u0000\u0001\u001f\t\n\r\b\f and DEL \u007f',
  'line separators \u2028 \u2029',
  'emoji 🧡 and CJK 日本語 and combining é',
  'lone surrogates \ud800 \udfff',
  '{"looks":"like json"},]',
];

test('validatedEventJson: same id check and same bytes as canonicalJson, for awkward content and tags', () => {
  awkward.forEach((content, i) => {
    const tags = [['p', pubkeyN(i)], ['t', content], [], ['x', '', '\u2028', '"']];
    const e = unsignedEvent(pubkeyN(i + 1), { kind: i * 7000, created_at: 1_700_000_000 + i, tags, content });
    const { event, json } = validatedEventJson(JSON.parse(JSON.stringify(e)));
    assert.equal(json, canonicalJson(e));
    assert.equal(event.id, computeEventId(e));
  });
});

test('jsonString is JSON.stringify for every single character and for random strings', () => {
  for (let c = 0; c <= 0xffff; c++) {
    const s = String.fromCharCode(c);
    assert.equal(jsonString(s), JSON.stringify(s), `U+${c.toString(16)}`);
    assert.equal(jsonString(`a${s}b`), JSON.stringify(`a${s}b`), `U+${c.toString(16)} inside`);
  }
  const rnd = prng(5);
  const alphabet = ['a', ' ', '"', '\\', '\n', '\u0000', '\u001f', '\u007f', 'é', '\u2028', '🧡', '\ud800', '\udc00', '日'];
  for (let i = 0; i < 2000; i++) {
    const s = Array.from({ length: Math.floor(rnd() * 40) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
    assert.equal(jsonString(s), JSON.stringify(s));
  }
  for (const s of awkward) assert.equal(jsonString(s), JSON.stringify(s));
});

test('validatedEventJson: a changed content, tag, kind or created_at is a bad id', () => {
  const e = unsignedEvent(pubkeyN(3), { kind: 1, created_at: 1_700_000_000, tags: [['t', 'a']], content: 'hello' });
  const variants: NostrEvent[] = [
    { ...e, content: 'hello!' },
    { ...e, tags: [['t', 'b']] },
    { ...e, kind: 2 },
    { ...e, created_at: e.created_at + 1 },
    { ...e, pubkey: pubkeyN(4) },
  ];
  for (const v of variants) {
    assert.throws(
      () => validatedEventJson(v),
      (err: unknown) => err instanceof InvalidEvent && err.reason === 'bad-id',
    );
  }
});
