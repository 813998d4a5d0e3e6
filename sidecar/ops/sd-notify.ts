// systemd's service notification protocol (sd_notify(3)): newline-separated KEY=VALUE datagrams
// sent to the unix datagram socket named by $NOTIFY_SOCKET. Without NOTIFY_SOCKET (not started
// by systemd with Type=notify) every call is a no-op.
//
// Node's dgram module has no unix datagram sockets; unix-dgram (a small native addon) sends them
// from this process itself, which is what systemd's default NotifyAccess=main requires.
import { createRequire } from 'node:module';
import type { Logger } from 'pino';

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, callback?: (err?: Error) => void): void;
  close(): void;
  on(event: 'error', fn: (err: Error) => void): void;
}

export class SdNotify {
  private socket: DgramSocket | null = null;
  private watchdogTimer: NodeJS.Timeout | null = null;
  private warned = false;

  private constructor(
    private readonly path: string | null,
    /** Half of WATCHDOG_USEC, in ms, when the watchdog is enabled for this process. */
    readonly watchdogIntervalMs: number | null,
    private readonly log: Logger,
  ) {}

  /**
   * Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, then removes them from `env` so child
   * processes do not inherit them (as sd_notify's unset_environment does).
   */
  static fromEnv(log: Logger, env: NodeJS.ProcessEnv = process.env): SdNotify {
    const path = env.NOTIFY_SOCKET || null;
    const usec = Number(env.WATCHDOG_USEC);
    const forPid = env.WATCHDOG_PID ? Number(env.WATCHDOG_PID) : process.pid;
    const interval = path && Number.isFinite(usec) && usec > 0 && forPid === process.pid ? Math.max(1, Math.floor(usec / 2000)) : null;
    delete env.NOTIFY_SOCKET;
    delete env.WATCHDOG_USEC;
    delete env.WATCHDOG_PID;
    const n = new SdNotify(path, interval, log);
    if (path) n.open();
    return n;
  }

  get enabled(): boolean {
    return this.socket !== null;
  }

  /** READY=1: the service is up (call once everything it serves is serving). */
  ready(status?: string): void {
    this.send({ READY: '1', ...(status ? { STATUS: status } : {}) });
  }

  status(text: string): void {
    this.send({ STATUS: text });
  }

  /** RELOADING=1 with the monotonic timestamp systemd ≥ 253 expects; follow with ready(). */
  reloading(): void {
    this.send({ RELOADING: '1', MONOTONIC_USEC: String(process.hrtime.bigint() / 1000n), STATUS: 'reloading config' });
  }

  stopping(status = 'stopping'): void {
    this.stopWatchdog();
    this.send({ STOPPING: '1', STATUS: status });
  }

  /** WATCHDOG=1 every half WATCHDOG_USEC while the event loop runs (no-op without the watchdog). */
  startWatchdog(): void {
    if (this.watchdogIntervalMs === null || this.watchdogTimer) return;
    this.send({ WATCHDOG: '1' });
    this.watchdogTimer = setInterval(() => this.send({ WATCHDOG: '1' }), this.watchdogIntervalMs);
    this.watchdogTimer.unref();
  }

  stopWatchdog(): void {
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    this.watchdogTimer = null;
  }

  close(): void {
    this.stopWatchdog();
    try {
      this.socket?.close();
    } catch {
      /* already closed */
    }
    this.socket = null;
  }

  private open(): void {
    if (this.path!.startsWith('@')) {
      this.log.error(
        { notifySocket: this.path },
        'NOTIFY_SOCKET is an abstract socket, which is not supported: systemd will not see READY=1',
      );
      return;
    }
    let dgram: { createSocket(type: 'unix_dgram'): DgramSocket };
    try {
      dgram = createRequire(import.meta.url)('unix-dgram') as typeof dgram;
    } catch (err) {
      this.log.error(
        { err: (err as Error).message },
        'NOTIFY_SOCKET is set but the unix-dgram module is missing (it needs a C++ toolchain at npm install): systemd will not see READY=1; reinstall, or use Type=simple',
      );
      return;
    }
    const socket = dgram.createSocket('unix_dgram');
    socket.on('error', (err) => this.warnOnce(err));
    this.socket = socket;
  }

  private send(fields: Record<string, string>): void {
    const socket = this.socket;
    if (!socket) return;
    const msg = Buffer.from(
      Object.entries(fields)
        .map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}`)
        .join('\n'),
    );
    try {
      socket.send(msg, 0, msg.length, this.path!, (err) => {
        if (err) this.warnOnce(err);
      });
    } catch (err) {
      this.warnOnce(err as Error);
    }
  }

  private warnOnce(err: Error): void {
    if (this.warned) return;
    this.warned = true;
    this.log.warn({ err: err.message, notifySocket: this.path }, 'cannot notify systemd');
  }
}
