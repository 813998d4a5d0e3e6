// `nostr-bt resolve` end to end on loopback: strfry's lines → plugin → sidecar (bundles, pointers)
// → a separate reader process that knows only the DHT bootstrap address and the bridge key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nip19 } from 'nostr-tools';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';
import { zbase32 } from '../sidecar/formats/zbase32.js';
import type { ResolveSummary } from '../scripts/reader/resolve.js';
import { FIXTURES } from './testkit/sidecar-process.js';
import { startLocalDht } from './testkit/local-dht.js';
import { startBridge, runCli, parseJsonl, lastJson, type Bridge } from './testkit/reader-rig.js';
import { signer } from './testkit/events.js';

const fixtureEvents = (): NostrEvent[] =>
  readFileSync(join(FIXTURES, 'strfry-plugin-input.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { event: NostrEvent }).event);

/** What strfry itself kept (its export), less what an archive never holds: ephemeral and expired events. */
function expectedFromExport(nowSec: number): NostrEvent[] {
  return readFileSync(join(FIXTURES, 'strfry-export.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as NostrEvent)
    .filter((e) => !(e.kind >= 20000 && e.kind < 30000))
    .filter((e) => !e.tags.some((t) => t[0] === 'expiration' && Number(t[1]) <= nowSec));
}

const newestFirst = (a: NostrEvent, b: NostrEvent) => b.created_at - a.created_at || (a.id < b.id ? -1 : 1);

test("resolve: a separate reader process gets exactly each author's archived events (deleted, superseded, ephemeral and expired ones absent)", {
  timeout: 120_000,
}, async () => {
  const dht = await startLocalDht(16);
  let bridge: Bridge | null = null;
  try {
    bridge = await startBridge(dht.bootstrap);
    const all = fixtureEvents();
    const deletion = all.find((e) => e.kind === 5)!;
    const articleV1 = all.find((e) => e.kind === 30023 && e.tags.some((t) => t[1] === 'Long form'))!;
    // First the notes and the first article version, cut into bundles and published; then the
    // rest: the deletion rewrites a published bundle, article v2 supersedes v1 held by an older bundle.
    const firstIds = new Set(all.slice(0, 9).map((e) => e.id));
    firstIds.delete(deletion.id);
    const first = all.filter((e) => firstIds.has(e.id));
    const rest = all.filter((e) => !firstIds.has(e.id));
    assert.ok(first.includes(articleV1));
    await bridge.feed(first);
    const authors = [...new Set(all.map((e) => e.pubkey))];
    await bridge.waitPublished(first.length, [...new Set(first.map((e) => e.pubkey))]);
    // One more of Alice's own notes, signed here, deleted in the second half as well.
    const alice = await signer();
    const note = alice.sign({ kind: 1, created_at: 1_795_464_400, content: 'keep me' });
    const regret = alice.sign({ kind: 1, created_at: 1_795_464_401, content: 'regret' });
    await bridge.feed([note, regret]);
    await bridge.waitPublished(first.length + 2, [...authors.filter((a) => first.some((e) => e.pubkey === a)), alice.pubkey]);
    const unsay = alice.sign({ kind: 5, created_at: 1_795_464_402, tags: [['e', regret.id]] });
    await bridge.feed([...rest, unsay]);

    const nowSec = Math.floor(Date.now() / 1000);
    const expected = [...expectedFromExport(nowSec), note, unsay];
    const ephemeral = all.filter((e) => e.kind >= 20000 && e.kind < 30000);
    const expired = all.filter((e) => e.tags.some((t) => t[0] === 'expiration' && Number(t[1]) <= nowSec));
    const deletedNote = all.find((e) => e.id === deletion.tags.find((t) => t[0] === 'e')![1])!;
    await bridge.waitPublished(expected.length, [...authors, alice.pubkey]);

    const bridgeZ32 = zbase32(Buffer.from(bridge.key, 'hex'));
    for (const author of [...authors, alice.pubkey]) {
      const want = expected.filter((e) => e.pubkey === author).sort(newestFirst);
      // npub for one author, hex for the others; the bridge key in both spellings.
      const authorArg = author === authors[0] ? nip19.npubEncode(author) : author;
      const bridgeArg = author === authors[1] ? bridgeZ32 : bridge.key;
      const r = await runCli([
        'resolve',
        authorArg,
        '--bridge',
        bridgeArg,
        '--bootstrap',
        dht.bootstrap.join(','),
        '--bind',
        '127.0.0.1',
        '--summary',
        'json',
      ]);
      assert.equal(r.code, 0, `exit 0 for ${author.slice(0, 8)}: ${r.stderr}`);
      const got = parseJsonl(r.stdout);
      assert.deepEqual(
        got.map((e) => e.id),
        want.map((e) => e.id),
        `events of ${author.slice(0, 8)}, newest first`,
      );
      assert.equal(
        r.stdout,
        want
          .map(
            (e) =>
              JSON.stringify({
                content: e.content,
                created_at: e.created_at,
                id: e.id,
                kind: e.kind,
                pubkey: e.pubkey,
                sig: e.sig,
                tags: e.tags,
              }) + '\n',
          )
          .join(''),
        'stored bytes (§4)',
      );
      const s = lastJson<ResolveSummary>(r.stderr);
      assert.equal(s.bridges[0]!.status, 'found');
      assert.equal(s.swarmComplete, true);
      assert.equal(s.sources.swarm, want.length);
      assert.deepEqual(s.rejected, {});
      assert.ok(s.bytes.files > 0 && s.bytes.received >= s.bytes.files, `bytes ${JSON.stringify(s.bytes)}`);
    }
    assert.ok(ephemeral.length >= 1 && expired.length >= 1, 'the fixture has ephemeral and expired events');
    for (const e of [regret, deletedNote, articleV1, ...ephemeral, ...expired])
      assert.ok(!expected.some((x) => x.id === e.id), `${e.id} is not expected`);

    // Not archived by this bridge: exit 1, nothing on stdout.
    const stranger = await signer();
    const none = await runCli([
      'resolve',
      stranger.pubkey,
      '--bridge',
      bridge.key,
      '--bootstrap',
      dht.bootstrap.join(','),
      '--bind',
      '127.0.0.1',
      '--pointer-timeout',
      '5',
    ]);
    assert.equal(none.code, 1, none.stderr);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /no pointer for this author/);
  } finally {
    await bridge?.stop();
    await dht.stop();
  }
});

test('resolve: malformed keys and options are refused with a clear message and exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [['resolve', 'npub1notakey', '--bridge', 'aa'.repeat(32)], /not a valid npub1 key/],
    [['resolve', 'zz'.repeat(32), '--bridge', 'aa'.repeat(32)], /not an author key/],
    [['resolve', nip19.nsecEncode(new Uint8Array(32).fill(1)), '--bridge', 'aa'.repeat(32)], /secret key/],
    [['resolve', 'aa'.repeat(32), '--discovery-timeout', 'soon'], /--discovery-timeout: not a duration/],
    [['resolve', 'aa'.repeat(32), '--max-bridges', '-1'], /--max-bridges/],
    [['resolve', 'aa'.repeat(32), '--bridge', 'abc'], /not a bridge key/],
    [['resolve', 'aa'.repeat(32), '--bridge', 'aa'.repeat(32), '--bootstrap', 'nohostport'], /not a bootstrap node/],
    [['resolve', 'aa'.repeat(32), '--bridge', 'aa'.repeat(32), '--kinds', '1,x'], /--kinds/],
    [['resolve', 'aa'.repeat(32), '--bridge', 'aa'.repeat(32), '--relay', 'http://x'], /--relay/],
    [['resolve', 'aa'.repeat(32), '--bridge', 'aa'.repeat(32), '--since', 'yesterday'], /--since/],
  ];
  for (const [args, msg] of cases) {
    const r = await runCli([...args, '--bootstrap', args.includes('--bootstrap') ? args[args.indexOf('--bootstrap') + 1]! : '127.0.0.1:9']);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.equal(r.stdout, '');
  }
});

test('resolve: no reachable DHT node is an error (exit 3), not "not found"', async () => {
  const r = await runCli(['resolve', 'aa'.repeat(32), '--bridge', 'aa'.repeat(32), '--bootstrap', '127.0.0.1:9', '--bind', '127.0.0.1']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /no DHT node answered/);
});
