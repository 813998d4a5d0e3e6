// A local Mainline-like DHT of bittorrent-dht nodes on 127.0.0.1 (never public bootstrap nodes).
import DHT from 'bittorrent-dht';
import { hardenDht } from '../../sidecar/dht-harden.js';
import { verifyEd25519 } from '../../sidecar/ed25519.js';

export interface LocalDht {
  nodes: DHT[];
  bootstrap: string[];
  stop(): Promise<void>;
}

function node(bootstrap: string[] | false): DHT {
  const d = new DHT({ bootstrap, host: false, verify: verifyEd25519 });
  hardenDht(d);
  d.on('error', () => {});
  d.on('warning', () => {});
  d.listen(0, '127.0.0.1');
  return d;
}

function once(d: DHT, event: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`DHT node: no '${event}' within ${ms} ms`)), ms);
    d.once(event, () => {
      clearTimeout(t);
      resolve();
    });
  });
}

export async function startLocalDht(n: number): Promise<LocalDht> {
  const first = node(false);
  await once(first, 'listening', 5000);
  const nodes = [first];
  const addr = (d: DHT) => `127.0.0.1:${d.address().port}`;
  while (nodes.length < n) {
    const pool = nodes.slice(0, 50);
    const batch: Promise<void>[] = [];
    for (let i = 0; i < Math.min(50, n - nodes.length); i++) {
      const seeds = [0, 1, 2, 3].map((j) => addr(pool[(i + j) % pool.length]!));
      const d = node([...new Set(seeds)]);
      batch.push(once(d, 'ready', 20_000));
      nodes.push(d);
    }
    await Promise.all(batch);
  }
  return {
    nodes,
    bootstrap: nodes.slice(0, 8).map(addr),
    stop: () => Promise.all(nodes.map((d) => new Promise<void>((r) => d.destroy(() => r())))).then(() => {}),
  };
}

export function dhtGet(d: DHT, target: Buffer, salt: Buffer): Promise<{ v: unknown; seq?: number; k?: Uint8Array; sig?: Uint8Array } | null> {
  return new Promise((resolve, reject) => {
    d.get(target, { salt, cache: false }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}
