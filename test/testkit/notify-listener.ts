// Runs test/testkit/notify_listener.py: a real unix datagram socket standing in for systemd's.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { DIST } from './sidecar-process.js';

export interface NotifyMessage {
  pid: number | null;
  fields: Record<string, string>;
  /** For READY=1: the sidecar's socket and runtime file were there when it arrived. */
  serving?: boolean;
}

export class NotifyListener {
  readonly messages: NotifyMessage[] = [];
  private constructor(
    readonly path: string,
    private readonly proc: ChildProcess,
  ) {}

  static async start(path: string, ingestSocket: string, runtimeFile: string): Promise<NotifyListener> {
    const proc = spawn('/usr/bin/python3', [join(DIST, '../test/testkit/notify_listener.py'), path, ingestSocket, runtimeFile], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: proc.stdout! });
    const l = new NotifyListener(path, proc);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('notify listener did not start')), 10_000);
      proc.once('exit', (code) => reject(new Error(`notify listener exited with ${code}`)));
      lines.on('line', (line) => {
        const m = JSON.parse(line) as NotifyMessage & { listening?: string };
        if (m.listening) {
          clearTimeout(timer);
          resolve();
        } else l.messages.push(m);
      });
    });
    return l;
  }

  /** Waits (bounded) until `pred` holds for the messages received so far. */
  async waitFor(pred: (ms: NotifyMessage[]) => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.messages)) {
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  count(key: string, value = '1'): number {
    return this.messages.filter((m) => m.fields[key] === value).length;
  }

  async close(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.stdin!.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
