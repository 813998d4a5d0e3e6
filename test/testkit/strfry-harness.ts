/**
 * A test/benchmark harness that drives a strfry write-policy plugin the way strfry does
 * (see docs/strfry-plugin-protocol.md):
 *
 * - the command runs through `/bin/sh -c`, started lazily on the first request, in its own
 *   process group (so a misbehaving plugin and its children can be SIGKILLed together);
 * - one JSON line in, one JSON line out, strictly one request outstanding at a time (further
 *   send() calls are queued, like strfry's single synchronous writer thread);
 * - a stdout line that is not JSON is recorded as a warning and skipped;
 * - a timeout, plugin exit, wrong id, missing field or unknown action is a "plugin error": the
 *   plugin is killed, the request rejects with PluginError, and the next request restarts it.
 *
 * The hot path (send -> reply) allocates only the promise, the parsed reply and the result
 * object; timing uses one re-armed Timeout per harness (Timeout#refresh, no per-request timer).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { strfryLine } from './events.js';

export interface PluginReply {
  id: string;
  action: 'accept' | 'reject' | 'shadowReject';
  msg?: string;
}

export interface HarnessOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Per-request reply timeout, default 10000 ms (strfry's `timeoutSeconds` default is 10). */
  timeoutMs?: number;
}

export type PluginErrorKind = 'timeout' | 'exit' | 'wrong-id' | 'bad-action' | 'missing-field';

export class PluginError extends Error {
  readonly kind: PluginErrorKind;
  /** The offending stdout line, when there is one (truncated to 1000 chars). */
  readonly line: string | undefined;
  constructor(kind: PluginErrorKind, message: string, line?: string) {
    super(message);
    this.name = 'PluginError';
    this.kind = kind;
    this.line = line === undefined ? undefined : line.length > 1000 ? line.slice(0, 1000) + '…' : line;
  }
}

export interface SendResult {
  reply: PluginReply;
  latencyNs: bigint;
}

export interface CloseResult {
  code: number | null;
  signal: string | null;
  exitedByItself: boolean;
}

/** strfry caps a reply line at 8192 bytes. */
export const MAX_REPLY_LINE_BYTES = 8192;
const STDERR_CAP = 1024 * 1024;
const MAX_WARNINGS = 1000;

interface Request {
  line: string;
  id: string;
  resolve: (r: SendResult) => void;
  reject: (e: Error) => void;
}

interface Running {
  child: ChildProcess;
  /** Complete stdout lines that arrived while no request was outstanding (null = overlong line). */
  backlog: (string | null)[];
  /** Partial stdout line. */
  partial: string;
  /** Discarding the rest of an overlong line until its newline. */
  skipping: boolean;
  /** stdout reached EOF (or the process could not be spawned). */
  eof: boolean;
  exited: boolean;
  exitCode: number | null;
  exitSignal: string | null;
}

// Safety net: never leave detached plugin process groups behind when the test process exits.
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function trackGroup(pid: number): void {
  liveGroups.add(pid);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const p of liveGroups) killGroup(p);
    });
  }
}
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}
const noop = (): void => {};

/** Resolves true once `done()` holds (checked now and on each `event`), false after `ms`. */
function waitFor(emitter: NodeJS.EventEmitter, event: string, done: () => boolean, ms: number): Promise<boolean> {
  if (done()) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const onEvent = (): void => {
      if (!done()) return;
      clearTimeout(t);
      emitter.off(event, onEvent);
      resolve(true);
    };
    const t = setTimeout(() => {
      emitter.off(event, onEvent);
      resolve(done());
    }, ms);
    emitter.on(event, onEvent);
  });
}

function overCap(s: string): boolean {
  // A UTF-16 code unit is at most 3 UTF-8 bytes, so short strings need no byte count.
  return s.length * 3 > MAX_REPLY_LINE_BYTES && Buffer.byteLength(s, 'utf8') > MAX_REPLY_LINE_BYTES;
}

export class StrfryHarness {
  readonly command: string;
  readonly timeoutMs: number;
  private readonly cwd: string | undefined;
  private readonly env: NodeJS.ProcessEnv | undefined;

  private run: Running | undefined;
  private pending: Request | undefined;
  private pendingStart = 0n;
  private pendingDeadline = 0n;
  private readonly timeoutNs: bigint;
  private timer: NodeJS.Timeout | undefined;
  private queue: (Request | undefined)[] = [];
  private queueHead = 0;
  private closing = false;

  private _restarts = 0;
  private _warnings: string[] = [];
  private _warningCount = 0;
  private _stderr = '';

  constructor(command: string, opts: HarnessOptions = {}) {
    this.command = command;
    this.cwd = opts.cwd;
    this.env = opts.env;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.timeoutNs = BigInt(Math.round(this.timeoutMs * 1e6));
  }

  /** How many times the plugin was (re)started. */
  get restarts(): number {
    return this._restarts;
  }
  /** stdout lines that were not JSON (the last 1000; see warningCount for the total). */
  get warnings(): string[] {
    return this._warnings;
  }
  get warningCount(): number {
    return this._warningCount;
  }
  /** Plugin stderr (all generations), the last ~1 MB. */
  get stderr(): string {
    return this._stderr;
  }
  /** pid of the current /bin/sh wrapper process. */
  get pid(): number | undefined {
    return this.run?.child.pid;
  }
  /** Requests waiting behind the outstanding one. */
  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  send(line: string, expectedId: string): Promise<SendResult> {
    return new Promise<SendResult>((resolve, reject) => {
      const req: Request = { line, id: expectedId, resolve, reject };
      if (this.closing) {
        reject(new PluginError('exit', 'harness is closing'));
      } else if (this.pending !== undefined || this.queueHead < this.queue.length) {
        this.queue.push(req);
      } else {
        this.dispatch(req);
      }
    });
  }

  sendEvent(
    event: { id: string } & Record<string, unknown>,
    extra: { sourceType?: string; sourceInfo?: string; authed?: string; receivedAt?: number } = {},
  ): Promise<SendResult> {
    const line = strfryLine(event, extra);
    return this.send(line, event.id);
  }

  /**
   * Closes the plugin's stdin and waits up to timeoutMs (default: the request timeout) for it to
   * exit by itself; otherwise SIGKILLs its process group. Queued requests are rejected; an
   * outstanding one may still be answered before the plugin exits. A later send() starts the
   * plugin again.
   */
  async close(timeoutMs: number = this.timeoutMs): Promise<CloseResult> {
    const run = this.run;
    this.closing = true;
    try {
      this.rejectQueued(new PluginError('exit', 'harness closed'));
      if (run === undefined) return { code: null, signal: null, exitedByItself: true };
      run.child.stdin?.end();
      const exitedByItself = await waitFor(run.child, 'exit', () => run.exited, timeoutMs);
      if (!exitedByItself) {
        this.killRun(run);
        await waitFor(run.child, 'exit', () => run.exited, 5000);
      }
      // Let stdout drain: an outstanding request may still get its reply.
      if (!run.eof && run.child.stdout) {
        await waitFor(run.child.stdout, 'close', () => run.eof, 500);
      }
      if (this.run === run) {
        // Something (a grandchild) still holds stdout open, or the plugin died idle.
        if (this.pending !== undefined) this.fail('exit', 'plugin exited while closing');
        else this.killRun(run);
      }
      if (this.pending === undefined && this.timer !== undefined) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      return { code: run.exitCode, signal: run.exitSignal, exitedByItself: exitedByItself && run.exited };
    } finally {
      this.closing = false;
    }
  }

  // ---------------------------------------------------------------------------------------

  private start(): Running {
    const child = spawn('/bin/sh', ['-c', this.command], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      cwd: this.cwd,
      env: this.env ?? process.env,
    });
    this._restarts++;
    const run: Running = {
      child,
      backlog: [],
      partial: '',
      skipping: false,
      eof: false,
      exited: false,
      exitCode: null,
      exitSignal: null,
    };
    this.run = run;
    if (child.pid !== undefined) trackGroup(child.pid);

    child.stdin!.on('error', noop); // EPIPE / write after the plugin died
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.onStdout(run, chunk));
    child.stdout!.on('error', noop);
    child.stdout!.on('close', () => this.onEof(run));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      let s = this._stderr + chunk;
      if (s.length > STDERR_CAP + (STDERR_CAP >> 2)) s = s.slice(s.length - STDERR_CAP);
      this._stderr = s;
    });
    child.stderr!.on('error', noop);
    child.on('error', (err) => {
      // spawn failure: there will be no output
      this._stderr += `[harness] spawn error: ${err.message}\n`;
      if (child.pid === undefined) run.exited = true; // never started: there is nothing to wait for
      this.onEof(run);
    });
    child.on('exit', (code, signal) => {
      run.exited = true;
      run.exitCode = code;
      run.exitSignal = signal;
      if (child.pid !== undefined) liveGroups.delete(child.pid);
    });
    return run;
  }

  private dispatch(req: Request): void {
    let run = this.run;
    if (run === undefined) {
      // The shell would only exit 126 ("Permission denied" on stderr, which may arrive after the
      // EOF this request fails on): say what is wrong instead.
      const why = notExecutable(this.command);
      if (why !== null) {
        const err = new PluginError('exit', why);
        req.reject(err);
        this.rejectQueued(err);
        return;
      }
      run = this.start();
    }
    this.pending = req;
    const now = process.hrtime.bigint();
    this.pendingStart = now;
    this.pendingDeadline = now + this.timeoutNs;
    if (this.timer === undefined) {
      // unref'd: while a request is outstanding the plugin's stdout pipe keeps the loop alive,
      // and an idle harness must not hold the process open.
      this.timer = setTimeout(() => this.onTimer(), this.timeoutMs).unref();
    } else {
      this.timer.refresh();
    }
    if (!run.eof) run.child.stdin!.write(req.line + '\n');
    // Lines the plugin wrote while nothing was outstanding are read first, as strfry would.
    if (run.backlog.length > 0) {
      const backlog = run.backlog;
      run.backlog = [];
      for (let i = 0; i < backlog.length; i++) {
        if (this.pending !== req || this.run !== run) {
          return;
        }
        this.onLine(backlog[i]!);
      }
    }
    if (this.pending === req && this.run === run && run.eof) {
      this.fail('exit', 'plugin is not running (stdout closed)');
    }
  }

  private onTimer(): void {
    if (this.pending === undefined) return;
    const now = process.hrtime.bigint();
    if (now >= this.pendingDeadline) {
      this.fail('timeout', `no reply within ${this.timeoutMs} ms`);
    } else {
      // Fired early (should not happen): re-arm for the remainder.
      const ms = Number((this.pendingDeadline - now) / 1_000_000n) + 1;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.onTimer(), ms).unref();
    }
  }

  private onStdout(run: Running, chunk: string): void {
    if (this.run !== run) return;
    let start = 0;
    let nl = chunk.indexOf('\n');
    while (nl !== -1) {
      if (run.skipping) {
        run.skipping = false; // the overlong line was already reported
      } else {
        let line = chunk.slice(start, nl);
        if (run.partial.length > 0) {
          line = run.partial + line;
          run.partial = '';
        }
        this.lineIn(run, overCap(line) ? null : line);
        if (this.run !== run) return; // plugin was killed while handling the line
      }
      start = nl + 1;
      nl = chunk.indexOf('\n', start);
    }
    if (start < chunk.length && !run.skipping) {
      const rest = start === 0 ? chunk : chunk.slice(start);
      run.partial = run.partial.length > 0 ? run.partial + rest : rest;
      if (overCap(run.partial)) {
        run.partial = '';
        run.skipping = true;
        this.lineIn(run, null);
      }
    }
  }

  private lineIn(run: Running, line: string | null): void {
    if (this.pending === undefined) {
      run.backlog.push(line);
    } else {
      this.onLine(line);
    }
  }

  /** Handles one stdout line while a request is outstanding. `null` = line over the cap. */
  private onLine(line: string | null): void {
    const req = this.pending!;
    if (line === null) {
      this.fail('bad-action', `reply line longer than ${MAX_REPLY_LINE_BYTES} bytes`);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this._warningCount++;
      if (this._warnings.length >= MAX_WARNINGS) this._warnings.shift();
      this._warnings.push(line);
      return;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      this.fail('missing-field', 'reply is not a JSON object', line);
      return;
    }
    const r = parsed as Record<string, unknown>;
    const id = r.id;
    const action = r.action;
    if (typeof id !== 'string' || typeof action !== 'string') {
      this.fail('missing-field', 'reply lacks a string "id" or "action"', line);
      return;
    }
    if (id !== req.id) {
      this.fail('wrong-id', `reply id ${id} != expected ${req.id}`, line);
      return;
    }
    if (action !== 'accept' && action !== 'reject' && action !== 'shadowReject') {
      this.fail('bad-action', `unknown action ${JSON.stringify(action)}`, line);
      return;
    }
    if (r.msg !== undefined && typeof r.msg !== 'string') {
      this.fail('missing-field', 'reply "msg" is not a string', line);
      return;
    }
    const latencyNs = process.hrtime.bigint() - this.pendingStart;
    this.pending = undefined;
    req.resolve({ reply: r as unknown as PluginReply, latencyNs });
    this.next();
  }

  private onEof(run: Running): void {
    if (run.eof) return;
    run.eof = true;
    if (this.run !== run) return;
    if (run.partial.length > 0 && !run.skipping) {
      // strfry would read a final unterminated line too
      const line = run.partial;
      run.partial = '';
      this.lineIn(run, overCap(line) ? null : line);
      if (this.run !== run) return;
    }
    if (this.pending !== undefined) this.fail('exit', 'plugin exited (stdout closed) while a reply was expected');
    // Otherwise: like strfry, the death is noticed on the next request, which fails with 'exit'.
  }

  /** Plugin error: kill the plugin, reject the outstanding request, go on with the queue. */
  private fail(kind: PluginErrorKind, message: string, line?: string): void {
    const run = this.run;
    if (run !== undefined) this.killRun(run);
    const req = this.pending;
    this.pending = undefined;
    if (req !== undefined) req.reject(new PluginError(kind, message, line));
    this.next();
  }

  private killRun(run: Running): void {
    if (this.run === run) this.run = undefined;
    const pid = run.child.pid;
    // Even after the wrapper exited, grandchildren may still be alive in its group.
    if (pid !== undefined) killGroup(pid);
    run.child.stdin?.destroy();
    run.child.stdout?.destroy();
    // stderr is left to drain: the plugin's last words are often the useful part.
  }

  private next(): void {
    if (this.queueHead < this.queue.length) {
      const req = this.queue[this.queueHead]!;
      this.queue[this.queueHead] = undefined;
      this.queueHead++;
      if (this.queueHead === this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
      } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
      }
      this.dispatch(req);
    }
  }

  private rejectQueued(err: Error): void {
    const q = this.queue;
    const head = this.queueHead;
    this.queue = [];
    this.queueHead = 0;
    for (let i = head; i < q.length; i++) q[i]!.reject(err);
  }
}

/**
 * Why a command that is one path to an existing file cannot run: it is not executable (a dist/
 * built with tsc alone; `npm run build` sets the bins executable). null: anything else.
 */
function notExecutable(command: string): string | null {
  if (!/^\/\S+$/.test(command) || !existsSync(command)) return null;
  try {
    accessSync(command, constants.X_OK);
    return null;
  } catch {
    return `${command} is not executable (built with tsc alone? \`npm run build\` sets the bins executable)`;
  }
}
