// Forwards accepted lines to the sidecar over its Unix socket without ever waiting for it.
// The sidecar acknowledges, after its LMDB commit, the cumulative number of lines it consumed on
// the connection; lines not yet acknowledged stay in memory and go to the spool if the connection
// drops, so a sidecar killed mid-stream loses nothing (duplicates are removed by the sidecar).
import { createConnection, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { SpoolWriter } from './spool-writer.js';

export interface LinkOptions {
  maxUnacked: number;
  maxUnackedBytes?: number;
}

export interface LinkStats {
  sent: number;
  acked: number;
  spooledWhileDown: number;
  spooledWhileBusy: number;
  connects: number;
}

const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 2000;

export class SidecarLink {
  readonly stats: LinkStats = { sent: 0, acked: 0, spooledWhileDown: 0, spooledWhileBusy: 0, connects: 0 };
  private sock: Socket | null = null;
  private connected = false;
  private unacked: string[] = [];
  private unackedHead = 0;
  private unackedBytes = 0;
  private ackedOnConn = 0;
  private ackBuf = '';
  private backoffMs = MIN_BACKOFF_MS;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private closing = false;
  private readonly maxUnackedBytes: number;

  constructor(
    private readonly socketPath: string,
    private readonly spool: SpoolWriter,
    private readonly opts: LinkOptions,
    private readonly log: Logger,
  ) {
    this.maxUnackedBytes = opts.maxUnackedBytes ?? 64 * 1024 * 1024;
  }

  get unackedCount(): number {
    return this.unacked.length - this.unackedHead;
  }

  /** Connects now, so the first events do not have to wait for a connection. */
  start(): void {
    if (this.sock === null && this.reconnectTimer === null && !this.closing) this.connect();
  }

  forward(line: string): void {
    if (this.sock === null && this.reconnectTimer === null && !this.closing) this.connect();
    // A full kernel socket buffer is normal while the sidecar commits a batch: Node keeps the
    // rest in memory. Only the bound on unacknowledged lines sends us to the spool.
    if (this.connected && this.unacked.length - this.unackedHead < this.opts.maxUnacked && this.unackedBytes < this.maxUnackedBytes) {
      this.unacked.push(line);
      this.unackedBytes += line.length;
      this.stats.sent++;
      this.sock!.write(line + '\n');
      return;
    }
    if (this.connected) this.stats.spooledWhileBusy++;
    else this.stats.spooledWhileDown++;
    this.spool.append(line);
  }

  /** Waits up to `waitMs` for outstanding acks, spools whatever is left, and closes. */
  async close(waitMs: number): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const deadline = Date.now() + waitMs;
    while (this.connected && this.unackedCount > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    this.spoolUnacked();
    this.sock?.destroy();
    this.sock = null;
    this.connected = false;
  }

  private connect(): void {
    const sock = createConnection(this.socketPath);
    this.sock = sock;
    sock.setNoDelay?.(true);
    sock.on('connect', () => {
      this.connected = true;
      this.ackedOnConn = 0;
      this.ackBuf = '';
      this.backoffMs = MIN_BACKOFF_MS;
      this.stats.connects++;
      // Whatever went to the spool while we were apart can now be drained by the sidecar.
      this.spool.closeCurrent();
    });
    sock.on('data', (chunk: Buffer) => this.onAckData(chunk));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (this.connected || this.backoffMs === MIN_BACKOFF_MS) {
        this.log.warn({ socket: this.socketPath, code: err.code }, 'sidecar unreachable, spooling');
      }
    });
    sock.on('close', () => this.onClose(sock));
  }

  private onAckData(chunk: Buffer): void {
    this.ackBuf += chunk.toString('latin1');
    let nl: number;
    let latest = -1;
    while ((nl = this.ackBuf.indexOf('\n')) >= 0) {
      const n = Number(this.ackBuf.slice(0, nl));
      this.ackBuf = this.ackBuf.slice(nl + 1);
      if (Number.isSafeInteger(n)) latest = n;
    }
    if (latest < 0) return;
    let drop = latest - this.ackedOnConn;
    if (drop <= 0) return;
    drop = Math.min(drop, this.unackedCount);
    for (let i = 0; i < drop; i++) {
      this.unackedBytes -= this.unacked[this.unackedHead]!.length;
      this.unacked[this.unackedHead++] = '';
    }
    this.ackedOnConn += drop;
    this.stats.acked += drop;
    // Caught up after a busy spell: let the sidecar drain what went to the spool meanwhile.
    if (this.spool.hasOpenFile && this.unackedCount * 2 < this.opts.maxUnacked) this.spool.closeCurrent();
    if (this.unackedHead > 4096 && this.unackedHead * 2 > this.unacked.length) {
      this.unacked = this.unacked.slice(this.unackedHead);
      this.unackedHead = 0;
    }
  }

  private onClose(sock: Socket): void {
    if (this.sock !== sock) return;
    this.sock = null;
    const wasConnected = this.connected;
    this.connected = false;
    this.spoolUnacked();
    if (wasConnected) this.log.warn({ socket: this.socketPath }, 'sidecar connection closed, spooling');
    if (this.closing) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closing) this.connect();
    }, this.backoffMs);
    this.reconnectTimer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
  }

  private spoolUnacked(): void {
    for (let i = this.unackedHead; i < this.unacked.length; i++) this.spool.append(this.unacked[i]!, true);
    this.unacked = [];
    this.unackedHead = 0;
    this.unackedBytes = 0;
  }
}
