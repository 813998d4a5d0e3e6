// A local Mainline-like DHT of bittorrent-dht nodes on 127.0.0.1 (never public bootstrap nodes).
import { createSocket, type Socket } from 'node:dgram';
import DHT from 'bittorrent-dht';
import { hardenDht } from '../../sidecar/dht/harden.js';
import { verifyEd25519 } from '../../sidecar/formats/ed25519.js';

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

export function dhtGet(
  d: DHT,
  target: Buffer,
  salt: Buffer,
): Promise<{ v: unknown; seq?: number; k?: Uint8Array; sig?: Uint8Array } | null> {
  return new Promise((resolve, reject) => {
    d.get(target, { salt, cache: false }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** UDP ports that are free right now (nothing answers there until a DHT node takes them). */
export async function freeUdpPorts(n: number): Promise<number[]> {
  const socks = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((r) => {
          const s = createSocket('udp4');
          s.bind(0, '127.0.0.1', () => r(s));
        }),
    ),
  );
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

/** A local DHT whose first nodes listen on the given ports (the sidecar's bootstrap list). */
export async function startLocalDhtAt(ports: number[], extra: number): Promise<DHT[]> {
  const nodes: DHT[] = [];
  const start = (bootstrap: string[] | false, port: number) => {
    const d = new DHT({ bootstrap, host: false, verify: verifyEd25519 });
    hardenDht(d);
    d.on('error', () => {});
    d.on('warning', () => {});
    nodes.push(d);
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('DHT node did not start')), 10_000);
      d.listen(port, '127.0.0.1', () => {
        if (bootstrap === false) {
          clearTimeout(t);
          resolve();
        } else
          d.once('ready', () => {
            clearTimeout(t);
            resolve();
          });
      });
    });
  };
  await start(false, ports[0]!);
  const first = [`127.0.0.1:${ports[0]}`];
  await Promise.all(ports.slice(1).map((p) => start(first, p)));
  const seeds = ports.map((p) => `127.0.0.1:${p}`);
  await Promise.all(Array.from({ length: extra }, () => start(seeds, 0)));
  return nodes;
}

/** `n` nodes on free loopback ports, and the bootstrap list of the first 8 (what a sidecar is given). */
export async function startPortedDht(n: number): Promise<{ ports: number[]; nodes: DHT[]; bootstrap: string[] }> {
  const ports = await freeUdpPorts(n);
  const nodes = await startLocalDhtAt(ports, 0);
  return { ports, nodes, bootstrap: ports.slice(0, 8).map((p) => `127.0.0.1:${p}`) };
}

export async function stopDhtNodes(nodes: DHT[]): Promise<void> {
  await Promise.all(nodes.map((d) => new Promise<void>((r) => d.destroy(() => r()))));
}
