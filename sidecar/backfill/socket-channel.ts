// The backfill command's link to a running sidecar: its ingest socket (docs/protocol.md §2), with
// a hello line asking for outcome tallies. Lines stay in memory until acknowledged (bounded by
// count and bytes: the reader waits, so memory stays flat whatever the history size). If the
// sidecar goes away (restart, crash) the channel reconnects for a while and sends the
// unacknowledged lines again; the sidecar drops whatever it already had by id.
import { createConnection, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { addTally, type IngestChannel, type Tally } from './channel.js';
import { isCheckpoint, type Checkpoint, type CheckpointIO } from '../index/checkpoints.js';

export interface SocketChannelOptions {
  path: string;
  /** Source name in the hello (quarantine entries and logs say where a line came from). */
  source: string;
  /** Signatures were checked upstream (strfry): the sidecar then checks only ids. */
  trusted: boolean;
  maxUnacked: number;
  maxUnackedBytes: number;
  /** How long to keep trying to reconnect after the connection dropped. */
  reconnectMs: number;
  /** Read (at connect) and save this checkpoint through the sidecar. */
  checkpointKey?: string;
  log: Logger;
}

const NL = Buffer.from('\n');
const HELLO_TIMEOUT_MS = 10_000;
const FLUSH_BYTES = 256 * 1024;
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;

export class SidecarUnreachable extends Error {}

export class SocketChannel implements IngestChannel {
  sent = 0;
  acked = 0;
  reconnects = 0;
  private queue: Buffer[] = [];
  /** Parallel to queue: 1 for an event line, 0 for a checkpoint line. */
  private isData: number[] = [];
  private head = 0;
  private loaded: Checkpoint | null | undefined = undefined;
  private onLoaded: (() => void) | null = null;
  private queueBytes = 0;
  private sock: Socket | null = null;
  private connAcked = 0;
  private connTally: Tally = {};
  private readonly closedTally: Tally = {};
  private ackBuf = '';
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushQueued = false;
  private failure: Error | null = null;
  private closing = false;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly opts: SocketChannelOptions) {}

  /** Connects (once; a sidecar that is not running is an error for the caller to report). */
  static async connect(opts: SocketChannelOptions): Promise<SocketChannel> {
    const ch = new SocketChannel(opts);
    try {
      ch.attach(await dial(opts.path));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT' || code === 'ECONNREFUSED'
          ? 'is the sidecar running?'
          : code === 'EACCES'
            ? 'permission denied: run as a member of the socket group'
            : (err as Error).message;
      throw new SidecarUnreachable(`cannot connect to the sidecar's ingest socket ${opts.path}: ${why}`);
    }
    if (opts.checkpointKey !== undefined) {
      // The sidecar answers a hello that names a checkpoint with its stored value, at once.
      const ok = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), HELLO_TIMEOUT_MS);
        ch.onLoaded = () => {
          clearTimeout(t);
          resolve(true);
        };
      });
      ch.onLoaded = null;
      if (!ok) {
        ch.closing = true;
        ch.sock?.destroy();
        throw new SidecarUnreachable(
          `the sidecar at ${opts.path} did not answer the backfill hello within ${HELLO_TIMEOUT_MS / 1000} s (is it an older version?)`,
        );
      }
    }
    return ch;
  }

  /** The checkpoint, read and saved through the sidecar (requires `checkpointKey`). */
  checkpointIO(): CheckpointIO {
    const key = this.opts.checkpointKey;
    if (key === undefined) throw new Error('no checkpoint key');
    const start = this.loaded ?? undefined;
    return {
      key,
      load: () => start,
      save: async (cp) => this.sendControl(JSON.stringify({ checkpoint: cp })),
    };
  }

  get unacked(): number {
    return this.queue.length - this.head;
  }

  get hasRoom(): boolean {
    return this.unacked < this.opts.maxUnacked && this.queueBytes < this.opts.maxUnackedBytes;
  }

  get tally(): Tally {
    const t: Tally = { ...this.closedTally };
    addTally(t, this.connTally);
    return t;
  }

  send(line: Buffer): void {
    this.enqueue(line, 1);
    this.sent++;
  }

  private sendControl(text: string): void {
    this.enqueue(Buffer.from(text), 0);
  }

  private enqueue(line: Buffer, data: number): void {
    this.queue.push(line);
    this.isData.push(data);
    this.queueBytes += line.length;
    if (this.sock) this.write(line);
  }

  waitForAck(ms: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        if (this.failure) reject(this.failure);
        else resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  /** Waits (bounded) until the sidecar consumed everything, the last checkpoint line included. */
  async close(waitMs = 5000): Promise<void> {
    const deadline = Date.now() + waitMs;
    while (this.unacked > 0 && this.sock && !this.failure && Date.now() < deadline) {
      await this.waitForAck(Math.max(1, deadline - Date.now())).catch(() => {});
    }
    this.closing = true;
    this.flush();
    const sock = this.sock;
    if (!sock) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        sock.destroy();
        resolve();
      }, 2000);
      sock.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      sock.end();
    });
  }

  private attach(sock: Socket): void {
    this.sock = sock;
    this.connAcked = 0;
    this.connTally = {};
    this.ackBuf = '';
    sock.setNoDelay(true);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('error', () => {});
    sock.on('close', () => this.onClose(sock));
    sock.write(
      JSON.stringify({ hello: this.opts.source, trusted: this.opts.trusted, tally: true, checkpoint: this.opts.checkpointKey }) + '\n',
    );
    for (let i = this.head; i < this.queue.length; i++) this.write(this.queue[i]!);
  }

  private write(line: Buffer): void {
    this.out.push(line, NL);
    this.outBytes += line.length + 1;
    if (this.outBytes >= FLUSH_BYTES) this.flush();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.out.length === 0) return;
    const buf = Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    this.sock?.write(buf);
  }

  private onData(d: string): void {
    this.ackBuf += d;
    let nl: number;
    let consumed = -1;
    while ((nl = this.ackBuf.indexOf('\n')) >= 0) {
      const line = this.ackBuf.slice(0, nl);
      this.ackBuf = this.ackBuf.slice(nl + 1);
      if (line.startsWith('{"checkpoint":')) {
        if (this.loaded === undefined) {
          try {
            const v = (JSON.parse(line) as { checkpoint: unknown }).checkpoint;
            this.loaded = isCheckpoint(v) ? v : null;
          } catch {
            this.loaded = null;
          }
          this.onLoaded?.();
        }
      } else if (line.startsWith('{')) {
        try {
          const a = JSON.parse(line) as { acked?: unknown; tally?: unknown };
          if (typeof a.acked === 'number') consumed = a.acked;
          if (a.tally && typeof a.tally === 'object') this.connTally = a.tally as Tally;
        } catch {
          /* not an ack */
        }
      } else if (/^\d+$/.test(line)) consumed = Number(line);
    }
    if (consumed < 0) return;
    // The hello is the connection's first consumed line.
    const fresh = Math.min(consumed - 1 - this.connAcked, this.unacked);
    if (fresh <= 0) return;
    for (let i = 0; i < fresh; i++) {
      this.queueBytes -= this.queue[this.head]!.length;
      this.acked += this.isData[this.head]!;
      this.queue[this.head++] = NL; // release the line
    }
    this.connAcked += fresh;
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.isData = this.isData.slice(this.head);
      this.head = 0;
    }
    for (const w of [...this.waiters]) w();
  }

  private onClose(sock: Socket): void {
    if (this.sock !== sock) return;
    this.sock = null;
    this.out = [];
    this.outBytes = 0;
    addTally(this.closedTally, this.connTally);
    this.connTally = {};
    if (this.closing) return;
    this.opts.log.warn(
      { socket: this.opts.path, unacked: this.unacked },
      'sidecar connection closed; reconnecting (unacknowledged lines will be sent again)',
    );
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    const deadline = Date.now() + this.opts.reconnectMs;
    let backoff = MIN_BACKOFF_MS;
    while (!this.closing) {
      try {
        this.attach(await dial(this.opts.path));
        this.reconnects++;
        this.opts.log.info({ socket: this.opts.path, resent: this.unacked }, 'reconnected to the sidecar');
        return;
      } catch {
        if (Date.now() + backoff > deadline) break;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
    if (this.closing) return;
    this.failure = new SidecarUnreachable(
      `lost the connection to the sidecar at ${this.opts.path} and could not reconnect within ${Math.round(this.opts.reconnectMs / 1000)} s; ${this.unacked} lines were not acknowledged (run again to resume)`,
    );
    for (const w of [...this.waiters]) w();
  }
}

function dial(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    const onError = (err: Error) => {
      sock.destroy();
      reject(err);
    };
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      resolve(sock);
    });
  });
}
