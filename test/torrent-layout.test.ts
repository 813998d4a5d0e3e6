// torrentLayout reads what bencode.decode reads (info bytes, name, piece length, pieces, total
// length) from real bundles and foreign torrents, and refuses malformed or mismatching ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bencode from 'bencode';
import { buildBundle } from '../sidecar/bundles/builder.js';
import { torrentLayout, TorrentLayoutError } from '../sidecar/formats/torrent-layout.js';
import { canonicalJson } from '../sidecar/formats/nostr-event.js';
import { contentOf, pubkeyN, unsignedEvent } from './testkit/events.js';

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');

/** What the full decoder says about a torrent. */
function decoded(torrent: Uint8Array) {
  const info = (bencode.decode(torrent) as { info: Record<string, unknown> }).info as {
    name: Uint8Array;
    'piece length': number;
    pieces: Uint8Array;
    length?: number;
    files?: { length: number }[];
  };
  return {
    info: Buffer.from(bencode.encode(info)),
    name: Buffer.from(info.name).toString(),
    pieceLength: info['piece length'],
    pieces: Buffer.from(info.pieces),
    length: info.length ?? info.files!.reduce((n, f) => n + f.length, 0),
  };
}

function asPlain(l: ReturnType<typeof torrentLayout>) {
  return { ...l, info: Buffer.from(l.info), pieces: Buffer.from(l.pieces) };
}

test('a built bundle: same fields as bencode.decode, info bytes hash to the infohash', async () => {
  const root = mkdtempSync(join(tmpdir(), 'nostr-bt-layout-'));
  try {
    const authors = Array.from({ length: 40 }, (_, a) => ({
      pubkey: pubkeyN(a),
      lines: Array.from({ length: 1 + (a % 4) }, (_, i) => {
        const e = unsignedEvent(pubkeyN(a), { kind: 1, created_at: 1000 + i, content: contentOf(700 + a * 31, a * 10 + i) });
        return { json: canonicalJson(e), createdAt: e.created_at };
      }),
    })).sort((x, y) => (x.pubkey < y.pubkey ? -1 : 1));
    const b = (await buildBundle(root, authors))!;
    const layout = torrentLayout(b.torrent, b.infoHash);
    assert.deepEqual(asPlain(layout), decoded(b.torrent));
    assert.equal(sha1(layout.info), b.infoHash);
    assert.equal(layout.length, b.bytes);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a foreign single-file torrent with other keys (announce, comment, private) reads the same way', () => {
  const length = 100_000;
  const pieceLength = 16_384;
  const info = {
    length,
    name: 'ünïcode name',
    'piece length': pieceLength,
    pieces: Buffer.alloc(20 * Math.ceil(length / pieceLength), 7),
    private: 1,
  };
  const torrent = Buffer.from(
    bencode.encode({ announce: 'http://127.0.0.1:1/announce', comment: 'x', 'creation date': 1, info, 'url-list': [['a'], ['b']] }),
  );
  const ih = sha1(bencode.encode(info));
  assert.deepEqual(asPlain(torrentLayout(torrent, ih)), decoded(torrent));
});

test('malformed, truncated, deeply nested or mismatching torrents are refused with TorrentLayoutError', () => {
  const info = { files: [{ length: 10, path: ['a'] }], name: 'n', 'piece length': 16_384, pieces: Buffer.alloc(20) };
  const good = Buffer.from(bencode.encode({ info }));
  const ih = sha1(bencode.encode(info));
  assert.doesNotThrow(() => torrentLayout(good, ih));
  const refused = (torrent: Uint8Array, infoHash = ih) => assert.throws(() => torrentLayout(torrent, infoHash), TorrentLayoutError);
  refused(good, 'f'.repeat(40));
  for (let cut = 1; cut < good.length; cut += 7) refused(good.subarray(0, cut));
  refused(Buffer.from('l4:infoe'));
  refused(Buffer.from('d4:infoi3ee'));
  refused(Buffer.from('d4:info99999:xe'));
  const wrongPieces = { ...info, pieces: Buffer.alloc(40) };
  refused(Buffer.from(bencode.encode({ info: wrongPieces })), sha1(bencode.encode(wrongPieces)));
  // 100,000 nested lists inside an unknown key: skipped without recursion.
  const nested = Buffer.concat([Buffer.from('d4:infod1:x'), Buffer.alloc(100_000, 'l'), Buffer.alloc(100_000, 'e'), Buffer.from('ee')]);
  refused(nested, sha1(nested.subarray(7, nested.length - 1)));
});
