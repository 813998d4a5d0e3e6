// The canonical-line fast path (sidecar/judge/canonical-event.ts) gives exactly the general path's
// result (judgeLine) for every line, takes the lines strfry exports, and leaves every other form
// to the general path: compared line by line over hand-made edge cases, lines whose id was
// computed over bytes JSON would not produce, and seeded random mutations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../sidecar/common/config.js';
import { CANONICAL_EVENT, CANONICAL_SKIPPED, CanonicalEventReader, NOT_CANONICAL } from '../sidecar/judge/canonical-event.js';
import { judgeRequest, packLines, unpackReply } from '../sidecar/judge/wire.js';
import { judgeLine, type Judged } from '../sidecar/judge/line-judge.js';
import { canonicalJson, type NostrEvent } from '../sidecar/formats/nostr-event.js';
import type { PolicyConfig } from '../sidecar/policy/content-policy.js';
import { pluginLine, prng, pubkeyN, strfryLine, unsignedEvent } from './testkit/events.js';

const FIXTURES = new URL('../../test/fixtures/', import.meta.url).pathname;
const NOW = 1_800_000_000;
const policy: PolicyConfig = {
  ...loadConfig({ env: {}, cwd: '/nonexistent' }).policy,
  maxEventBytes: 64 * 1024,
  relayUrl: 'wss://relay.example',
};
const A = pubkeyN(1);

/** judgeRequest's answer per line (fast path where it applies), JSON as text. */
function viaRequest(lines: (string | Buffer)[]): Judged[] {
  return unpackReply(judgeRequest({ seq: 0, lines: packLines(lines), verify: false, nowSec: NOW }, policy)).map((j) => {
    if (j.kind !== 'event') return j;
    assert.equal(Buffer.from(j.keyBytes!).toString('hex'), j.event.id + j.event.pubkey);
    const { keyBytes: _k, ...rest } = j;
    return { ...rest, json: Buffer.from(rest.json as Uint8Array).toString('utf8') };
  });
}

/** The general path's answer per line. */
function viaJudgeLine(lines: (string | Buffer)[]): Judged[] {
  return lines.map((l) => judgeLine(typeof l === 'string' ? l : l.toString('utf8'), false, policy, NOW));
}

/** What the fast path alone says of each line. */
function fastVerdicts(lines: (string | Buffer)[]): number[] {
  const reader = new CanonicalEventReader();
  const batch = packLines(lines);
  reader.use(batch.bytes);
  return lines.map((_, i) => reader.judge(i === 0 ? 0 : batch.ends[i - 1]!, batch.ends[i]!, policy, NOW, new Uint8Array(64), 0));
}

/** What the fast path says of each line when it is read as strfry's wrapper (NOT_CANONICAL if it is not one). */
function wrappedVerdicts(lines: (string | Buffer)[]): number[] {
  const reader = new CanonicalEventReader();
  const batch = packLines(lines);
  reader.use(batch.bytes);
  return lines.map((_, i) => {
    const start = i === 0 ? 0 : batch.ends[i - 1]!;
    if (!reader.unwrap(start, batch.ends[i]!)) return NOT_CANONICAL;
    return reader.judge(reader.eventStart, reader.eventEnd, policy, NOW, new Uint8Array(64), 0);
  });
}

/** The part of strfry's line for `e` after the event. */
function tailOf(e: NostrEvent): string {
  const l = pluginLine(e);
  return l.slice(l.lastIndexOf('},"receivedAt":') + 1);
}

/** strfry's plugin lines around an event: the shapes it writes, then shapes it does not. */
function wrappedForms(e: NostrEvent): { strfry: string[]; other: string[] } {
  const canonical = canonicalJson(e);
  const event = JSON.parse(canonical) as object;
  const strfry = [
    pluginLine(e),
    pluginLine(e, { authed: A, sourceType: 'IP6', sourceInfo: '::1', receivedAt: 0 }),
    pluginLine(e, { sourceType: 'Stream', sourceInfo: 'wss://relay.example/x?a="b"\\c\u00e9 é\n' }),
    pluginLine(e, { sourceType: 'Import', sourceInfo: '' }),
    // The wrapper's tail inside the event's strings (escaped there).
    pluginLine(unsignedEvent(A, { kind: 1, created_at: NOW - 1, tags: [['t', '},"receivedAt":1,']], content: `x${tailOf(e)}` })),
  ];
  const tail = ',"receivedAt":1,"sourceInfo":"127.0.0.1","sourceType":"IP4","type":"new"}';
  // Escapes JSON.stringify does not write but JSON.parse reads, in the wrapper only.
  strfry.push(`{"event":${canonical}${tail.replace('127.0.0.1', 'a\\/b\\u00E9\\uD83E')}`);
  const other = [
    `{"event":${canonical}${tail.replace('"type":"new"', '"type":"new","x":1')}`,
    `{"event":${canonical}${tail.replace('"new"', '"old"')}`,
    `{"event":${canonical}${tail.replace(':1,', ':01,')}`,
    `{"event":${canonical}${tail.replace(':1,', ':1.5,')}`,
    `{"event":${canonical}${tail.replace('127.0.0.1', '127\\x')}`,
    `{"event":${canonical}${tail.replace('127.0.0.1', '127\\u00e')}`,
    `{"event":${canonical}${tail.replace('127.0.0.1', '127\\')}`,
    `{"event":${canonical}${tail.replace('127.0.0.1', '12"7')}`,
    `{"event":${canonical}${tail.replace('127.0.0.1', '1	2')}`,
    `{"event":${canonical}${tail.replace('IP4', 'I"P')}`,
    `{"event":${canonical}${tail}x`,
    `{"event":${canonical}${tail.slice(0, -1)}`,
    `{"event":${canonical},"event":${canonical}${tail}`,
    `{"event":${canonical}${tail.replace(',"receivedAt":1', ',"receivedAt":1,"event":{}')}`,
    `{"event":${canonical.slice(0, -1)}${tail}`,
    `{"event": ${canonical}${tail}`,
    `{"authed":"${A.toUpperCase()}","event":${canonical}${tail}`,
    `{"authed":"${A.slice(1)}","event":${canonical}${tail}`,
    `{"authed":"${A}","event":${canonical}${tail}`,
    `{"event":${canonical.replace('"content":"', '"content":"!')}${tail}`, // bad id
    `{"event":${JSON.stringify(e)}${tail}`, // the event's keys unsorted
    `{"event":${canonical}${tail}`.replace('"sig":"', '"sig":"},\\"receivedAt\\":'),
    strfryLine(event, { sourceType: 'ip-4' }),
    strfryLine({ ...event, extra: 1 }),
    `{"event":${canonical}}`,
    `{"event":{}${tail}`,
    '{"event":' + tail,
    '{"event":',
  ];
  return { strfry, other };
}

function ev(kind: number, content: string, tags: string[][] = [], created_at = NOW - 100): NostrEvent {
  return unsignedEvent(A, { kind, created_at, tags, content });
}

/** Events that cover the policy and the characters JSON escapes. */
function events(): NostrEvent[] {
  const contents = [
    '',
    'hello',
    'é ü 中文 🦀 𝄞 \u2028 \u2029 \u007f',
    'line\nbreak\ttab\rcr "quoted" back\\slash \b \f',
    'nul \u0000 and \u001f',
    'lone \ud800 surrogate',
    '{"name":"alice","about":"json in content"}',
    'slash / and </script>',
    'x'.repeat(5000),
  ];
  const out: NostrEvent[] = [];
  for (const c of contents)
    out.push(
      ev(1, c),
      ev(1, c, [
        ['e', pubkeyN(2), '', 'root'],
        ['p', pubkeyN(3)],
      ]),
    );
  out.push(
    ev(7, '+', [
      ['e', pubkeyN(4)],
      ['p', pubkeyN(5)],
      ['k', '1'],
    ]),
    ev(0, '{"name":"a"}'),
    ev(3, '', [
      ['p', pubkeyN(6)],
      ['p', pubkeyN(7), 'wss://r.example', 'petname'],
    ]),
    ev(10002, '', [['r', 'wss://relay.example']]),
    ev(30023, 'article', [
      ['d', 'slug'],
      ['title', 'é "t"'],
    ]),
    ev(30023, 'article without d'),
    ev(5, 'delete', [
      ['e', pubkeyN(8)],
      ['a', `30023:${A}:slug`],
      ['a', `30023:${pubkeyN(9)}:x`],
      ['k', '1'],
    ]),
    ev(62, 'vanish', [['relay', 'wss://relay.example/']]),
    ev(62, 'vanish elsewhere', [['relay', 'wss://other.example']]),
    ev(20001, 'ephemeral'),
    ev(1, 'protected', [['-']]),
    ev(1, 'protected later', [['p', pubkeyN(2)], ['-']]),
    ev(1, 'expired', [['expiration', String(NOW - 1)]]),
    ev(1, 'expires', [['expiration', String(NOW + 100)]]),
    ev(1, 'expiration not first', [
      ['x', 'expiration'],
      ['expiration', String(NOW - 1)],
    ]),
    ev(1, 'odd tags', [[], [''], ['t', ''], ['emoji', '🦀', 'é\n"\\'], ['nul', '\u0000']]),
    ev(1, 'y'.repeat(70 * 1024)),
    ev(1, 'epoch', [], 0),
    ev(1, 'far future', [], Number.MAX_SAFE_INTEGER),
    ev(65535, 'max kind'),
  );
  return out;
}

/** Valid JSON for the same event that is not its canonical form (the general path takes these). */
function otherForms(e: NostrEvent): string[] {
  const canonical = canonicalJson(e);
  return [
    pluginLine(e),
    JSON.stringify(e), // key order of the object
    JSON.stringify({ ...JSON.parse(canonical), extra: 1 }),
    canonical.replace('"created_at":', '"created_at": '),
    canonical.replace('{"content"', '{ "content"'),
    canonical + ' ',
    canonical + '\r',
    canonical.replace(/"tags":\[(.+)\]\}$/, '"tags":[ $1]}'),
    canonical.replace(/\//g, '\\/'),
    canonical.replace('"content":"', '"content":"\\u0020').replace(/"id":"[0-9a-f]{64}"/, `"id":"${e.id}"`),
    canonical.replace(`"created_at":${e.created_at}`, `"created_at":${e.created_at}.0`),
    canonical.replace(`"created_at":${e.created_at}`, `"created_at":0${e.created_at}`),
    canonical.replace(`"kind":${e.kind}`, `"kind":${e.kind}e0`),
    canonical.replace(`"id":"${e.id}"`, `"id":"${e.id.toUpperCase()}"`),
    canonical.replace(`"pubkey":"${e.pubkey}"`, `"pubkey":"${e.pubkey.toUpperCase()}"`),
    canonical.replace(`"sig":"${e.sig}"`, `"sig":"${e.sig.slice(0, 126)}ZZ"`),
    canonical.replace(`"id":"${e.id}"`, `"id":"${e.id.slice(0, 63)}${e.id[63] === '0' ? '1' : '0'}"`), // bad id
    canonical.replace('"content":"', '"content":"!'), // bad id
    canonical.slice(0, -1),
    canonical + '}',
    `{"event":${canonical}}`,
  ];
}

/**
 * A line in canonical layout whose id is the sha256 of its own bytes: content and tags given as
 * raw bytes, which JSON or UTF-8 may not accept (the fast path must not take what JSON.parse
 * refuses, nor bytes that decode to something else).
 */
function rawLine(content: Buffer, tags: Buffer, kind = 1, createdAt = `${NOW - 5}`): Buffer {
  const head = (s: string) => Buffer.from(s, 'latin1');
  const serialized = Buffer.concat([head(`[0,"${A}",${createdAt},${kind},`), tags, head(','), content, head(']')]);
  const id = createHash('sha256').update(serialized).digest('hex');
  return Buffer.concat([
    head('{"content":'),
    content,
    head(`,"created_at":${createdAt},"id":"${id}","kind":${kind},"pubkey":"${A}","sig":"${'ab'.repeat(64)}","tags":`),
    tags,
    head('}'),
  ]);
}

function rawLines(): Buffer[] {
  const q = (...parts: (string | number[])[]) =>
    Buffer.concat([
      Buffer.from('"'),
      ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))),
      Buffer.from('"'),
    ]);
  const noTags = Buffer.from('[]');
  return [
    rawLine(q('ok'), noTags),
    rawLine(q('raw ', [0x01], ' control'), noTags),
    rawLine(q('raw ', [0x0a], ' newline'), noTags),
    rawLine(q('bad utf-8 ', [0xff, 0xfe]), noTags),
    rawLine(q('overlong ', [0xc0, 0xaf]), noTags),
    rawLine(q('surrogate ', [0xed, 0xa0, 0x80]), noTags),
    rawLine(q('truncated ', [0xe2, 0x82]), noTags),
    rawLine(q('valid ', [0xe2, 0x82, 0xac]), noTags),
    rawLine(q('escape \\u0041'), noTags),
    rawLine(q('escape \\/'), noTags),
    rawLine(q('bad escape \\x'), noTags),
    rawLine(q('trailing backslash \\'), noTags),
    rawLine(q('ok'), Buffer.concat([Buffer.from('[["t","'), Buffer.from([0xff]), Buffer.from('"]]')])),
    rawLine(q('ok'), Buffer.concat([Buffer.from('[["t","'), Buffer.from([0x01]), Buffer.from('"]]')])),
    rawLine(q('ok'), Buffer.from('[["t",1]]')),
    rawLine(q('ok'), Buffer.from('[["t","a"],]')),
    rawLine(q('ok'), Buffer.from('[["t","a"]')),
    rawLine(q('ok'), Buffer.from('[["t""a"]]')),
    rawLine(q('ok'), Buffer.from('["t"]')),
    rawLine(q('ok'), Buffer.from('[[],[]]')),
    rawLine(q('ok'), Buffer.from('[["-"]]')),
    rawLine(q('ok'), Buffer.from('[["\\u002d"]]')),
    rawLine(q('ok'), Buffer.from('{}')),
    rawLine(q('ok'), Buffer.from('[["t"]]]')),
    rawLine(q('ok'), Buffer.from('[]]')),
    rawLine(q('ok'), noTags, 1, '9007199254740993'),
    rawLine(q('ok'), noTags, 1, '-1'),
    rawLine(q('ok'), noTags, 65536),
    rawLine(q('ok'), noTags, 1, '00'),
  ];
}

function fixtureLines(): string[] {
  return ['strfry-plugin-input.jsonl', 'strfry-export.jsonl'].flatMap((f) =>
    readFileSync(join(FIXTURES, f), 'utf8')
      .split('\n')
      .filter((l) => l.length > 0),
  );
}

test('canonical lines take the fast path and are judged exactly as the general path judges them', () => {
  const evs = events();
  const lines = evs.map((e) => canonicalJson(e));
  assert.deepEqual(viaRequest(lines), viaJudgeLine(lines));
  const verdicts = fastVerdicts(lines);
  evs.forEach((e, i) => {
    // Content or tags JSON.stringify writes with \u escapes are left to the general path.
    const expected = /\\u/.test(lines[i]!) ? NOT_CANONICAL : [CANONICAL_EVENT, CANONICAL_SKIPPED];
    if (Array.isArray(expected)) assert.ok(expected.includes(verdicts[i]!), `fast path takes ${lines[i]!.slice(0, 60)}`);
    else assert.equal(verdicts[i], expected, `general path for ${JSON.stringify(e.content.slice(0, 30))}`);
  });
  const judged = viaJudgeLine(lines).map((j) =>
    j.kind === 'event'
      ? `event${j.cls.replaceKey ? '.replace' : ''}${j.cls.deletes ? '.deletes' : ''}${j.cls.vanish ? '.vanish' : ''}${j.cls.expiresAt ? '.expires' : ''}`
      : `${j.kind}.${j.reason}`,
  );
  for (const k of [
    'event',
    'event.replace',
    'event.deletes',
    'event.vanish',
    'event.expires',
    'skipped.ephemeral',
    'skipped.protected',
    'skipped.expired',
    'skipped.too-large',
  ]) {
    assert.ok(judged.includes(k), `the events cover ${k}`);
  }
});

test('every other form of an event, and lines strfry never writes, are judged as the general path judges them', () => {
  const lines: (string | Buffer)[] = [...events().flatMap(otherForms), ...rawLines(), ...fixtureLines()];
  assert.deepEqual(viaRequest(lines), viaJudgeLine(lines));
  const verdicts = fastVerdicts(lines);
  // Of the raw lines only these are canonical: plain text, valid UTF-8, and tags of empty tags.
  const raw = rawLines();
  const rawVerdicts = fastVerdicts(raw);
  assert.deepEqual(
    raw.flatMap((l, i) => (rawVerdicts[i] === NOT_CANONICAL ? [] : [l.toString('utf8').slice(0, 40)])),
    [raw[0], raw[7], raw[19], raw[20]].map((l) => l!.toString('utf8').slice(0, 40)),
  );
  const exported = fixtureLines().filter((l) => l.startsWith('{"content"'));
  assert.ok(exported.length > 0 && fastVerdicts(exported).every((v) => v !== NOT_CANONICAL), 'strfry export lines take the fast path');
  assert.ok(verdicts.some((v) => v === NOT_CANONICAL));
});

test('random byte mutations of canonical lines are judged as the general path judges them', () => {
  const rnd = prng(20261125);
  const base = events()
    .filter((e) => e.content.length < 2000)
    .map((e) => Buffer.from(canonicalJson(e)));
  const alphabet = [
    0x00, 0x0a, 0x20, 0x22, 0x2c, 0x30, 0x31, 0x3a, 0x41, 0x5b, 0x5c, 0x5d, 0x61, 0x66, 0x6e, 0x75, 0x7b, 0x7d, 0x7f, 0x80, 0xc3, 0xa9,
    0xff,
  ];
  const lines: Buffer[] = [];
  for (let n = 0; n < 3000; n++) {
    const b = base[Math.floor(rnd() * base.length)]!;
    const at = Math.floor(rnd() * b.length);
    const byte = alphabet[Math.floor(rnd() * alphabet.length)]!;
    const op = rnd();
    if (op < 0.4) lines.push(Buffer.concat([b.subarray(0, at), Buffer.from([byte]), b.subarray(at + 1)]));
    else if (op < 0.7) lines.push(Buffer.concat([b.subarray(0, at), Buffer.from([byte]), b.subarray(at)]));
    else lines.push(Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + Math.floor(rnd() * 3))]));
  }
  // A newline would split the line in a real batch: the socket never gives one inside a line.
  const single = lines.filter((l) => !l.includes(0x0a));
  assert.deepEqual(viaRequest(single), viaJudgeLine(single));
});

test("strfry's plugin lines take the fast path through their wrapper and are judged as the general path judges them", () => {
  const forms = events().map(wrappedForms);
  const strfry = forms.flatMap((f) => f.strfry);
  assert.deepEqual(viaRequest(strfry), viaJudgeLine(strfry));
  const verdicts = wrappedVerdicts(strfry);
  strfry.forEach((l, i) => {
    // As for bare lines: content or tags with \u escapes are left to the general path.
    const json = JSON.stringify((JSON.parse(l) as { event: unknown }).event);
    if (/\\u/.test(json)) assert.equal(verdicts[i], NOT_CANONICAL, l.slice(0, 80));
    else assert.ok([CANONICAL_EVENT, CANONICAL_SKIPPED].includes(verdicts[i]!), `fast path takes ${l.slice(0, 80)}`);
  });
  const fixtures = fixtureLines().filter((l) => l.startsWith('{"event"') || l.startsWith('{"authed"'));
  assert.ok(
    fixtures.length > 0 && wrappedVerdicts(fixtures).every((v) => v !== NOT_CANONICAL),
    'the strfry fixture lines take the fast path',
  );
  assert.deepEqual(viaRequest(fixtures), viaJudgeLine(fixtures));

  const other = forms.flatMap((f) => f.other);
  assert.deepEqual(viaRequest(other), viaJudgeLine(other));
  const otherVerdicts = wrappedVerdicts(other);
  assert.deepEqual(
    other.filter((_, i) => otherVerdicts[i] !== NOT_CANONICAL && !other[i]!.startsWith('{"authed":"' + A + '"')),
    [],
    'no other shape is unwrapped',
  );
});

test("random byte mutations of strfry's plugin lines are judged as the general path judges them", () => {
  const rnd = prng(20261207);
  const base = events()
    .filter((e) => e.content.length < 2000)
    .map((e) => Buffer.from(pluginLine(e, rnd() < 0.5 ? {} : { authed: A, sourceInfo: 'a\\"b' })));
  const alphabet = [
    0x00, 0x0a, 0x20, 0x22, 0x2c, 0x30, 0x31, 0x3a, 0x41, 0x5b, 0x5c, 0x5d, 0x61, 0x66, 0x6e, 0x75, 0x7b, 0x7d, 0x7f, 0x80, 0xc3, 0xa9,
    0xff,
  ];
  const lines: Buffer[] = [];
  for (let n = 0; n < 3000; n++) {
    const b = base[Math.floor(rnd() * base.length)]!;
    // Half the mutations land in the wrapper's tail, where the event's own checks do not reach.
    const tailAt = b.lastIndexOf('},"receivedAt":');
    const at = rnd() < 0.5 ? tailAt + Math.floor(rnd() * (b.length - tailAt)) : Math.floor(rnd() * b.length);
    const byte = alphabet[Math.floor(rnd() * alphabet.length)]!;
    const op = rnd();
    if (op < 0.4) lines.push(Buffer.concat([b.subarray(0, at), Buffer.from([byte]), b.subarray(at + 1)]));
    else if (op < 0.7) lines.push(Buffer.concat([b.subarray(0, at), Buffer.from([byte]), b.subarray(at)]));
    else lines.push(Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + Math.floor(rnd() * 3))]));
  }
  const single = lines.filter((l) => !l.includes(0x0a));
  assert.deepEqual(viaRequest(single), viaJudgeLine(single));
});
