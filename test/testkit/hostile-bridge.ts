// A bridge that is not nostr-bt: bundles built by hand (any files, any bytes, malformed on
// purpose), seeded by a plain WebTorrent client on a local DHT node, and author pointers signed
// with a test bridge key and put straight into the DHT. For tests of what a reader refuses.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bencode from 'bencode';
import type DHT from 'bittorrent-dht';
import type WebTorrent from 'webtorrent';
import { quietWebTorrent } from './quiet-webtorrent.js';
import { keyFromSeed, type Ed25519Key } from '../../sidecar/formats/ed25519.js';
import { authorPages, authorSalt, BRIDGE_SALT, bridgeValue, signedBytes } from '../../sidecar/formats/pointer-item.js';
import type { CatalogBundle } from '../../sidecar/formats/catalog.js';
import { ItemPutter } from '../../sidecar/dht/put.js';

export interface HandmadeFile {
  /** Path under the torrent's name, e.g. ["<pubkey>.jsonl"] (or anything else, on purpose). */
  path: string[];
  data: Buffer;
}

export interface HandmadeBundle {
  infoHash: string;
  name: string;
  torrent: Buffer;
  files: HandmadeFile[];
  pieceLength: number;
}

/** A v1 multi-file torrent over these files (in the given order), like §6 but with no checks. */
export function makeBundle(files: HandmadeFile[], opts: { name?: string; pieceLength?: number } = {}): HandmadeBundle {
  const pieceLength = opts.pieceLength ?? 16384;
  const all = Buffer.concat(files.map((f) => f.data));
  const pieces: Buffer[] = [];
  for (let off = 0; off < all.length; off += pieceLength)
    pieces.push(
      createHash('sha1')
        .update(all.subarray(off, off + pieceLength))
        .digest(),
    );
  const name = opts.name ?? `nostr-bt-handmade-${randomBytes(4).toString('hex')}`;
  const info = {
    files: files.map((f) => ({ length: f.data.length, path: f.path })),
    name,
    'piece length': pieceLength,
    pieces: Buffer.concat(pieces),
  };
  const infoHash = createHash('sha1').update(bencode.encode(info)).digest('hex');
  return { infoHash, name, torrent: Buffer.from(bencode.encode({ info })), files, pieceLength };
}

/** Seeds hand-made bundles with one plain WebTorrent client that announces on `dht`. */
export class HandmadeSeeder {
  readonly client: WebTorrent;
  private readonly dir = mkdtempSync(join(tmpdir(), 'nostr-bt-hostile-'));

  constructor(dht: DHT) {
    this.client = quietWebTorrent();
    this.client.dht = dht;
    this.client.on('error', () => {});
  }

  /** Torrents added before the client listens would be announced with port 0. */
  private listening(): Promise<void> {
    return new Promise((r) => (this.client.listening ? r() : this.client.once('listening', () => r())));
  }

  async seed(b: HandmadeBundle): Promise<void> {
    await this.listening();
    const root = join(this.dir, b.infoHash);
    for (const f of b.files) {
      const p = join(root, b.name, ...f.path);
      mkdirSync(join(p, '..'), { recursive: true });
      writeFileSync(p, f.data);
    }
    await new Promise<void>((resolve, reject) => {
      const t = this.client.add(b.torrent, { path: root, announce: [] });
      t.once('error', reject);
      const timer = setTimeout(() => reject(new Error('hand-made bundle did not verify')), 10_000);
      const ok = () => {
        clearTimeout(timer);
        resolve();
      };
      // Seeding and announced in the DHT.
      const announced = new Promise<void>((r) => t.once('dhtAnnounce', () => r()));
      t.once('ready', () => {
        const verified = t.done || t.progress === 1 ? Promise.resolve() : new Promise<void>((r) => t.once('done', () => r()));
        void Promise.all([verified, announced]).then(ok);
      });
    });
  }

  /** Announces the bundle and serves its metadata, but has none of its pieces: a download that never finishes. */
  async seedMetadataOnly(b: HandmadeBundle): Promise<void> {
    await this.listening();
    const root = join(this.dir, b.infoHash);
    mkdirSync(root, { recursive: true });
    await new Promise<void>((resolve, reject) => {
      const t = this.client.add(b.torrent, { path: root, announce: [], deselect: true });
      t.once('error', reject);
      const timer = setTimeout(() => reject(new Error('not announced')), 10_000);
      t.once('dhtAnnounce', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    this.client.dht = null;
    await new Promise<void>((r) => this.client.destroy(() => r()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface TestBridgeKey {
  key: Ed25519Key;
  hex: string;
}

export function testBridgeKey(): TestBridgeKey {
  const key = keyFromSeed(randomBytes(32));
  return { key, hex: key.publicKey.toString('hex') };
}

/** Signs and puts an author's pointer pages (§7) listing these bundles, newest first. */
export async function putPointer(
  dht: DHT,
  bridge: TestBridgeKey,
  author: string,
  infoHashesNewestFirst: string[],
  seq = Date.now() * 1000,
): Promise<void> {
  const pages = authorPages(infoHashesNewestFirst);
  await Promise.all(
    pages.map(
      (v, p) =>
        new Promise<void>((resolve, reject) => {
          const salt = authorSalt(author, p);
          dht.put({ k: bridge.key.publicKey, salt, seq, v, sig: bridge.key.sign(signedBytes(salt, seq, v)) }, (err, _h, n) =>
            err ? reject(err) : n > 0 ? resolve() : reject(new Error('pointer stored on no node')),
          );
        }),
    ),
  );
}

/** Signs and puts a bridge item naming `catalog` (and a gateway URL, if any) for a hand-made bridge. */
export async function putBridgeItem(
  dht: DHT,
  bridge: TestBridgeKey,
  catalog: string,
  seq: number,
  gateway: string | null = null,
): Promise<void> {
  const v = bridgeValue({ relayUrl: '', authors: 1, events: 1, bundles: 1, newest: null, catalog, gateway });
  const out = await new ItemPutter(dht).put({
    k: bridge.key.publicKey,
    salt: BRIDGE_SALT,
    seq,
    v,
    sig: bridge.key.sign(signedBytes(BRIDGE_SALT, seq, v)),
  });
  if (out.stored === 0) throw new Error('bridge item stored on no node');
}

/** A catalog entry for a hand-made bundle: its window is the minute ending at `end`. */
export function catalogEntry(b: HandmadeBundle, events: number, authors: string[], end = 1_700_000_060): CatalogBundle {
  return { ih: b.infoHash, level: 0, start: end - 60, end, events, bytes: b.files.reduce((n, f) => n + f.data.length, 0), authors };
}
