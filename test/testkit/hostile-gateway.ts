// A hostile gateway on loopback for the browser reader's tests: it serves the real page (dist/browser)
// under its own bridge key, a bundle whose author file holds tampered events (consistent with its
// torrent, so only the page's event checks can catch them) behind a pointer it signs correctly,
// and for another author a pointer whose signature is broken.
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import bencode from 'bencode';
import { buildBundle } from '../../sidecar/bundles/builder.js';
import { keyFromSeed } from '../../sidecar/formats/ed25519.js';
import { authorSalt, signedBytes } from '../../sidecar/formats/pointer-item.js';
import { zbase32 } from '../../sidecar/formats/zbase32.js';
import { canonicalJson, type NostrEvent } from '../../sidecar/formats/nostr-event.js';
import { DIST } from './sidecar-process.js';

export interface HostileGateway {
  base: string;
  bridgeKey: string;
  close(): Promise<void>;
}

export interface HostileContent {
  /** The author whose pointer is signed correctly and whose file holds `lines` (in this order). */
  author: string;
  lines: { text: string; createdAt: number }[];
  /** An author whose pointer's signature is broken. */
  forgedAuthor: string;
  root: string;
}

export async function startHostileGateway(c: HostileContent): Promise<HostileGateway> {
  const key = keyFromSeed(randomBytes(32));
  const bridgeKey = key.publicKey.toString('hex');
  const built = await buildBundle(c.root, [{ pubkey: c.author, lines: c.lines.map((l) => ({ json: l.text, createdAt: l.createdAt })) }]);
  if (!built) throw new Error('no bundle built');
  const fileBytes = Buffer.from(c.lines.map((l) => l.text + '\n').join(''));
  const item = (author: string, forge: boolean) => {
    const salt = authorSalt(author, 0);
    const v = { v: 1, ih: Buffer.from(built.infoHash, 'hex'), b: Buffer.alloc(0), n: 1, pg: 1 };
    const seq = 1_700_000_000_000_000;
    const sig = key.sign(signedBytes(salt, seq, v));
    if (forge) sig[10]! ^= 0x01;
    return JSON.stringify({
      k: bridgeKey,
      salt: salt.toString('hex'),
      seq,
      v: Buffer.from(bencode.encode(v)).toString('base64'),
      sig: sig.toString('hex'),
    });
  };
  const page = join(DIST, 'browser');
  const assets: Record<string, [string, string]> = {
    '/': ['index.html', 'text/html'],
    '/reader.js': ['reader.js', 'text/javascript'],
    '/reader.css': ['reader.css', 'text/css'],
  };
  let base = '';
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    res.setHeader('access-control-allow-origin', '*');
    const asset = assets[path];
    if (asset) return void res.writeHead(200, { 'content-type': asset[1] }).end(readFileSync(join(page, asset[0])));
    if (path === '/.well-known/nostr-bt') {
      const doc = {
        v: 1,
        bridge: { hex: bridgeKey, z32: zbase32(key.publicKey) },
        relay: null,
        counts: { authors: 2, events: c.lines.length, bundles: 1 },
        endpoints: { tracker: null },
      };
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
    }
    if (path === `/pointer/${c.author}`) return void res.writeHead(200, { 'content-type': 'application/json' }).end(item(c.author, false));
    if (path === `/pointer/${c.forgedAuthor}`)
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(item(c.forgedAuthor, true));
    if (path === `/torrent/${built.infoHash}.torrent`)
      return void res.writeHead(200, { 'content-type': 'application/x-bittorrent' }).end(built.torrent);
    // WebTorrent asks a one-file torrent's web seed for the url-list entry itself.
    if (path === `/webseed/${built.infoHash}/` || (path.startsWith(`/webseed/${built.infoHash}/`) && path.endsWith(`/${c.author}.jsonl`))) {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (!m) return void res.writeHead(200, { 'content-length': fileBytes.length }).end(fileBytes);
      const [s, e] = [Number(m[1]), Math.min(Number(m[2]), fileBytes.length - 1)];
      return void res
        .writeHead(206, { 'content-range': `bytes ${s}-${e}/${fileBytes.length}`, 'content-length': e - s + 1 })
        .end(fileBytes.subarray(s, e + 1));
    }
    res.writeHead(404).end('not found\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    bridgeKey,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** An event's canonical line with its content changed after signing (the id no longer matches). */
export function tampered(e: NostrEvent, content: string): string {
  return canonicalJson({ ...e, content });
}
