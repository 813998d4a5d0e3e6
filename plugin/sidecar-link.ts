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
  /** How long lines gather before one write sends them (0: each line at once); see plugin.forwardDelayMs. */
  forwardDelayMs?: number;
}

/** A gathered write goes out at once past this size (a socket buffer's worth). */
const GATHER_MAX_BYTES = 64 * 1024;

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
  /** Lines forwarded (and in `unacked`) but not yet written to the socket. */
  private gathered: string[] = [];
  private gatheredBytes = 0;
  private gatherTimer: NodeJS.Timeout | null = null;

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
      this.send(line);
      return;
    }
    if (this.connected) this.stats.spooledWhileBusy++;
    else this.stats.spooledWhileDown++;
    this.spool.append(line);
  }

  /**
   * Writes the line, or gathers it for one write of every line of the next few ms: at a relay's
   * rate a write per line costs this process a system call and the sidecar a wake-up and a read
   * per event. The line is in `unacked` already, so a lost connection spools it either way.
   */
  private send(line: string): void {
    const delay = this.opts.forwardDelayMs ?? 0;
    if (delay <= 0) {
      this.sock!.write(line + '\n');
      return;
    }
    this.gathered.push(line);
    this.gatheredBytes += line.length + 1;
    if (this.gatheredBytes >= GATHER_MAX_BYTES) this.flushGathered();
    else this.gatherTimer ??= setTimeout(() => this.flushGathered(), delay);
  }

  private flushGathered(): void {
    if (this.gatherTimer) clearTimeout(this.gatherTimer);
    this.gatherTimer = null;
    if (this.gathered.length === 0) return;
    const text = this.gathered.join('\n') + '\n';
    this.gathered = [];
    this.gatheredBytes = 0;
    if (this.connected && this.sock) this.sock.write(text);
  }

  /** Drops what was gathered for a connection that is gone (those lines are in `unacked`, which is spooled). */
  private dropGathered(): void {
    if (this.gatherTimer) clearTimeout(this.gatherTimer);
    this.gatherTimer = null;
    this.gathered = [];
    this.gatheredBytes = 0;
  }

  /** Waits up to `waitMs` for outstanding acks, spools whatever is left, and closes. */
  async close(waitMs: number): Promise<void> {
    this.closing = true;
    this.flushGathered();
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
    this.dropGathered();
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
    this.dropGathered();
    for (let i = this.unackedHead; i < this.unacked.length; i++) this.spool.append(this.unacked[i]!, true);
    this.unacked = [];
    this.unackedHead = 0;
    this.unackedBytes = 0;
  }
}
