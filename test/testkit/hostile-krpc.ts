// A KRPC client of our own (raw UDP + bencode), for saying to a DHT node what a well-behaved
// library never would: old or forged BEP-44 items, targets of the wrong length, one host behind
// many source ports. Loopback only: it binds 127.0.0.x and talks to the given ports.
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import bencode from 'bencode';

export interface KrpcReply {
  y: 'r' | 'e';
  /** `r` of a response (byte strings as Buffers). */
  r?: Record<string, unknown>;
  /** `e` of an error: [code, message]. */
  e?: [number, string];
  /** The whole decoded message. */
  raw: Record<string, unknown>;
}

export interface Target {
  host: string;
  port: number;
}

/** Buffers all the way down (bencode 4 decodes byte strings as Uint8Array). */
function toBuffers(x: unknown): unknown {
  if (x instanceof Uint8Array) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  if (Array.isArray(x)) return x.map(toBuffers);
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, toBuffers(v)]));
  return x;
}

export class HostileKrpc {
  /** Node id sent in queries from socket i (each socket claims its own id, as a Sybil would). */
  readonly ids: Buffer[];
  private readonly waiting = new Map<string, (m: KrpcReply) => void>();

  private constructor(
    readonly host: string,
    private readonly socks: Socket[],
  ) {
    this.ids = socks.map(() => randomBytes(20));
    for (const s of socks) {
      s.on('message', (buf) => {
        let m: Record<string, unknown>;
        try {
          m = toBuffers(bencode.decode(buf)) as Record<string, unknown>;
        } catch {
          return;
        }
        const t = m['t'];
        if (!Buffer.isBuffer(t)) return;
        const y = Buffer.isBuffer(m['y']) ? m['y'].toString() : '';
        if (y !== 'r' && y !== 'e') return;
        const e = m['e'] as unknown[] | undefined;
        const reply: KrpcReply = {
          y,
          raw: m,
          r: y === 'r' ? (m['r'] as Record<string, unknown>) : undefined,
          e: y === 'e' && Array.isArray(e) ? [Number(e[0]), Buffer.isBuffer(e[1]) ? e[1].toString() : String(e[1])] : undefined,
        };
        const cb = this.waiting.get(t.toString('hex'));
        if (cb) cb(reply);
      });
    }
  }

  /** `sockets` UDP sockets bound to `host` (any 127.0.0.x works on Linux without setup). */
  static async open(host = '127.0.0.1', sockets = 1): Promise<HostileKrpc> {
    const socks = await Promise.all(
      Array.from(
        { length: sockets },
        () =>
          new Promise<Socket>((resolve, reject) => {
            const s = createSocket('udp4');
            s.once('error', reject);
            s.bind(0, host, () => {
              s.off('error', reject);
              s.on('error', () => {});
              resolve(s);
            });
          }),
      ),
    );
    return new HostileKrpc(host, socks);
  }

  get size(): number {
    return this.socks.length;
  }

  /**
   * Sends a query and waits for its reply: null when nothing came within `timeoutMs` (silence).
   * `a.id` is this socket's id unless `a` sets one (`id: undefined` sends none).
   */
  query(to: Target, q: string, a: Record<string, unknown>, opts: { from?: number; timeoutMs?: number } = {}): Promise<KrpcReply | null> {
    const from = opts.from ?? 0;
    return this.raw(to, { y: 'q', q, a: { id: this.ids[from], ...a } }, opts);
  }

  /** Sends any message (a `t` is added) and waits for the reply to it, or null on silence. */
  raw(to: Target, msg: Record<string, unknown>, opts: { from?: number; timeoutMs?: number } = {}): Promise<KrpcReply | null> {
    const t = randomBytes(4);
    const key = t.toString('hex');
    const sock = this.socks[opts.from ?? 0]!;
    const clean: Record<string, unknown> = Object.fromEntries(Object.entries({ ...msg, t }).filter(([, v]) => v !== undefined));
    if (clean['a'] && typeof clean['a'] === 'object') {
      clean['a'] = Object.fromEntries(Object.entries(clean['a'] as object).filter(([, v]) => v !== undefined));
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        resolve(null);
      }, opts.timeoutMs ?? 5000);
      this.waiting.set(key, (m) => {
        clearTimeout(timer);
        this.waiting.delete(key);
        resolve(m);
      });
      sock.send(Buffer.from(bencode.encode(clean)), to.port, to.host);
    });
  }

  /** A `get` for a write token (BEP-44); throws when the node gives none. */
  async token(to: Target, target: Buffer, from = 0): Promise<Buffer> {
    const res = await this.query(to, 'get', { target }, { from });
    const token = res?.r?.['token'];
    if (!Buffer.isBuffer(token)) throw new Error(`no write token from ${to.host}:${to.port}: ${JSON.stringify(res?.e ?? res)}`);
    return token;
  }

  close(): Promise<void> {
    for (const [, cb] of this.waiting) cb({ y: 'e', e: [0, 'closed'], raw: {} });
    this.waiting.clear();
    return Promise.all(this.socks.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => {});
  }
}
