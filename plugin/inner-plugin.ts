// Runs the operator's existing write-policy plugin behind ours, speaking strfry's protocol to it.
// Its verdict goes back to strfry unchanged; if it crashes, hangs or answers wrongly it is killed,
// restarted on the next event, and the event gets the configured fail-mode verdict.
import { execa, type ResultPromise } from 'execa';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';

export interface InnerOptions {
  timeoutMs: number;
  failMode: 'reject' | 'accept';
  failMessage: string;
}

export interface InnerVerdict {
  /** The line to send back to strfry (no newline). */
  reply: string;
  accepted: boolean;
  failed: boolean;
}

type Waiter = { id: string; resolve: (line: string | null) => void };

const MAX_REPLY_BYTES = 8192;

export class InnerPlugin {
  restarts = 0;
  failures = 0;
  private proc: ResultPromise | null = null;
  private waiter: Waiter | null = null;

  constructor(
    private readonly command: string,
    private readonly opts: InnerOptions,
    private readonly log: Logger,
  ) {}

  async decide(line: string, id: string): Promise<InnerVerdict> {
    const proc = this.proc ?? this.start();
    const reply = await new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => {
        this.log.error({ id, timeoutMs: this.opts.timeoutMs }, 'inner plugin timed out; restarting it');
        this.kill();
      }, this.opts.timeoutMs);
      this.waiter = {
        id,
        resolve: (l) => {
          clearTimeout(timer);
          this.waiter = null;
          resolve(l);
        },
      };
      proc.stdin?.write(line + '\n');
    });
    if (reply === null) return this.failVerdict(id);
    let action: unknown;
    try {
      action = (JSON.parse(reply) as { action?: unknown }).action;
    } catch {
      action = undefined;
    }
    return { reply, accepted: action === 'accept', failed: false };
  }

  stop(): void {
    this.kill();
  }

  private failVerdict(id: string): InnerVerdict {
    this.failures++;
    const reply =
      this.opts.failMode === 'accept'
        ? JSON.stringify({ id, action: 'accept' })
        : JSON.stringify({ id, action: 'reject', msg: this.opts.failMessage });
    return { reply, accepted: this.opts.failMode === 'accept', failed: true };
  }

  private start(): ResultPromise {
    this.restarts++;
    const proc = execa(this.command, {
      shell: true,
      detached: true,
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'inherit',
      buffer: false,
      reject: false,
      cleanup: true,
    });
    this.proc = proc;
    proc.stdin?.on('error', () => {
      /* EPIPE from a dead inner plugin: handled through its exit */
    });
    const rl = createInterface({ input: proc.stdout!, crlfDelay: Infinity });
    rl.on('line', (l) => this.onLine(proc, l));
    void proc.then((result) => {
      if (this.proc !== proc) return;
      this.proc = null;
      this.log.error({ exitCode: result.exitCode, signal: result.signal }, 'inner plugin exited; restarting it on the next event');
      this.waiter?.resolve(null);
    });
    return proc;
  }

  private onLine(proc: ResultPromise, line: string): void {
    if (this.proc !== proc || !this.waiter) return;
    let msg: { id?: unknown; action?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      this.log.warn({ line: line.slice(0, 200) }, 'inner plugin wrote a non-JSON line; skipped');
      return;
    }
    const ok =
      msg !== null &&
      typeof msg === 'object' &&
      msg.id === this.waiter.id &&
      (msg.action === 'accept' || msg.action === 'reject' || msg.action === 'shadowReject') &&
      Buffer.byteLength(line) <= MAX_REPLY_BYTES;
    if (!ok) {
      this.log.error({ expected: this.waiter.id, line: line.slice(0, 200) }, 'inner plugin gave an invalid reply; restarting it');
      this.kill();
      return;
    }
    this.waiter.resolve(line);
  }

  private kill(): void {
    const proc = this.proc;
    this.proc = null;
    if (proc?.pid) {
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        proc.kill('SIGKILL');
      }
    }
    this.waiter?.resolve(null);
  }
}
