// The bridge's beacon: a small TCP listener whose port the bridge announces under the discovery
// infohash (docs/protocol.md §10). It speaks just enough BitTorrent for a reader to learn the
// bridge's key: the BEP-3 handshake for that infohash, then BEP-10 extended handshakes, its own
// carrying the key and a signature over the reader's nonce. Each connection is bounded in bytes
// and time, and the listener in connections, so a flood of peers costs it a fixed amount.
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import {
  BeaconFrameError,
  BeaconFrames,
  DISCOVERY_INFOHASH,
  beaconAnswer,
  encodeExtendedHandshake,
  encodeHandshake,
  parseReaderHello,
} from '../formats/bridge-beacon.js';

export interface BeaconIdentity {
  publicKey: Uint8Array;
  sign(msg: Uint8Array): Uint8Array;
}

export interface BeaconOptions {
  host: string;
  port: number;
  /** Connections served at once; more are closed at accept. */
  maxConnections: number;
  /** A connection that has not finished the exchange by then is closed. */
  timeoutMs: number;
  /** The bridge's public gateway URL, signed into the answer ("" for none). */
  gatewayUrl: string;
}

export interface BeaconStats {
  port: number;
  connections: number;
  answered: number;
  refused: Record<string, number>;
}

export class BeaconServer {
  private readonly sockets = new Set<Socket>();
  private readonly stats = { answered: 0, refused: {} as Record<string, number> };
  private readonly peerId = Buffer.concat([Buffer.from('-NB0100-'), randomBytes(12)]);

  private constructor(
    private readonly server: Server,
    private readonly identity: BeaconIdentity,
    private readonly opts: BeaconOptions,
    private readonly log: Logger,
  ) {}

  static async start(identity: BeaconIdentity, opts: BeaconOptions, log: Logger): Promise<BeaconServer> {
    const server = createServer({ pauseOnConnect: false, noDelay: true });
    const beacon = new BeaconServer(server, identity, opts, log);
    server.on('connection', (s) => beacon.serve(s));
    server.on('error', (err) => log.warn({ err }, 'discovery beacon error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return beacon;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  status(): BeaconStats {
    return { port: this.port, connections: this.sockets.size, answered: this.stats.answered, refused: { ...this.stats.refused } };
  }

  private refuse(s: Socket, reason: string): void {
    this.stats.refused[reason] = (this.stats.refused[reason] ?? 0) + 1;
    s.destroy();
  }

  private serve(s: Socket): void {
    if (this.sockets.size >= this.opts.maxConnections) {
      this.refuse(s, 'busy');
      return;
    }
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
    s.on('error', () => {});
    const timer = setTimeout(() => this.refuse(s, 'timeout'), this.opts.timeoutMs);
    s.once('close', () => clearTimeout(timer));
    const frames = new BeaconFrames();
    let done = false;
    s.on('data', (chunk: Buffer) => {
      if (done) return;
      try {
        frames.push(chunk);
        for (let item = frames.next(); item && !done; item = frames.next()) {
          if ('handshake' in item) {
            if (!item.handshake.infoHash.equals(DISCOVERY_INFOHASH)) return this.refuse(s, 'wrong-infohash');
            if (!item.handshake.extended) return this.refuse(s, 'no-extensions');
            s.write(encodeHandshake(DISCOVERY_INFOHASH, this.peerId));
          } else if ('extended' in item && item.extended.id === 0) {
            const nonce = parseReaderHello(item.extended.payload);
            if (!nonce) return this.refuse(s, 'no-nonce');
            done = true;
            this.stats.answered++;
            s.end(
              encodeExtendedHandshake(beaconAnswer(this.identity.publicKey, this.identity.sign, nonce, this.opts.gatewayUrl || undefined)),
            );
            // A peer that never reads its answer does not hold the connection past the timeout.
          }
          // Other messages (keep-alives, bitfields, extension messages) are skipped.
        }
      } catch (err) {
        if (err instanceof BeaconFrameError) return this.refuse(s, 'malformed');
        this.log.warn({ err }, 'discovery beacon: unexpected error');
        return this.refuse(s, 'error');
      }
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
