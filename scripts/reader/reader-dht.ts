// The reader's own Mainline DHT node: it looks up bridge pointers (BEP-44) and finds bundle peers.
// Same hardening and signature check as the bridge's node; the bootstrap list is always explicit.
import DHT from 'bittorrent-dht';
import { hardenDht } from '../../sidecar/dht/harden.js';
import { verifyEd25519 } from '../../sidecar/formats/ed25519.js';
import { DhtUnreachable } from './errors.js';
import { InputError } from './keys.js';

/** "host:port,host:port" → ["host:port", ...], each checked. */
export function parseBootstrap(input: string): string[] {
  const out: string[] = [];
  for (const part of input
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^(\[[0-9a-fA-F:]+\]|[^\s:[\]]+):(\d{1,5})$/.exec(part);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
      throw new InputError(`not a bootstrap node: ${JSON.stringify(part)} (expected host:port)`);
    out.push(part);
  }
  if (out.length === 0) throw new InputError('--bootstrap needs at least one host:port');
  return out;
}

export interface ReaderDhtOptions {
  bootstrap: string[];
  /** Address to bind (default all interfaces). */
  host?: string;
  /** How long to wait for the bootstrap to answer. */
  readyTimeoutMs?: number;
  maxPacketsPerSecondPerNode?: number;
  /**
   * How long a query waits for its answer (bittorrent-dht's default is 2 s). A lookup for an
   * item nobody holds ends only when every queried node answered or timed out, so dead nodes in
   * the routing table make "absent" cost about this long.
   */
  queryTimeoutMs?: number;
}

export { DhtUnreachable };

export async function startReaderDht(opts: ReaderDhtOptions): Promise<DHT> {
  if (opts.bootstrap.length === 0) throw new InputError('no DHT bootstrap nodes');
  const dht = new DHT({
    bootstrap: opts.bootstrap,
    host: false,
    verify: verifyEd25519,
    ...(opts.queryTimeoutMs ? { timeout: opts.queryTimeoutMs } : {}),
  } as ConstructorParameters<typeof DHT>[0]);
  try {
    hardenDht(dht, { maxPacketsPerSecondPerNode: opts.maxPacketsPerSecondPerNode ?? 5 });
  } catch (err) {
    dht.destroy();
    throw err;
  }
  dht.setMaxListeners(0); // one 'peer' listener per torrent being fetched
  dht.on('error', () => {});
  dht.on('warning', () => {});
  const ready = new Promise<void>((resolve) => dht.once('ready', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    dht.once('error', reject);
    dht.listen(0, opts.host ?? '0.0.0.0', () => resolve());
  });
  const timeoutMs = opts.readyTimeoutMs ?? 15_000;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([ready, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
  clearTimeout(timer);
  if (dht.nodes.count() === 0) {
    await stopReaderDht(dht);
    throw new DhtUnreachable(`no DHT node answered within ${timeoutMs} ms (bootstrap: ${opts.bootstrap.join(', ')})`);
  }
  return dht;
}

export function stopReaderDht(dht: DHT): Promise<void> {
  return new Promise((resolve) => (dht.destroyed ? resolve() : dht.destroy(() => resolve())));
}
