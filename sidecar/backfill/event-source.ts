// Where backfilled events come from: `strfry export` (run through execa with the operator's strfry
// binary and config, --since/--until passed on), a JSONL file, or stdin. Each source is a stream of
// byte chunks read with backpressure (a paused reader pauses strfry through its pipe), plus a
// verdict once it ended: did the source itself fail?
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { execa } from 'execa';

export type SourceSpec = { kind: 'strfry'; bin: string; config?: string } | { kind: 'file'; path: string } | { kind: 'stdin' };

export interface SourceRange {
  since?: number;
  until?: number;
}

export interface OpenedSource {
  /** For logs and the summary, e.g. `strfry --config=/etc/strfry.conf export --since=1700000000`. */
  readonly describe: string;
  readonly chunks: AsyncIterable<Buffer>;
  /** Bytes the source will deliver, when known (files). */
  readonly totalBytes: number | null;
  /** After the chunks ended: null when the source finished normally, else what went wrong. */
  result(): Promise<string | null>;
  /** Stop early (Ctrl-C, sidecar stopping); the source's failure after that is not reported. */
  abort(): void;
}

const READ_CHUNK = 1024 * 1024;
const STDERR_TAIL = 4096;

export function strfryArgs(spec: { config?: string }, range: SourceRange): string[] {
  const args: string[] = [];
  if (spec.config) args.push(`--config=${spec.config}`);
  args.push('export');
  if (range.since !== undefined) args.push(`--since=${range.since}`);
  if (range.until !== undefined) args.push(`--until=${range.until}`);
  return args;
}

export async function openSource(spec: SourceSpec, range: SourceRange, startOffset = 0): Promise<OpenedSource> {
  if (spec.kind === 'strfry') return openStrfry(spec, range);
  if (spec.kind === 'file') return openFile(spec.path, startOffset);
  return fromStream('stdin', process.stdin, null, () => {});
}

function openStrfry(spec: { bin: string; config?: string }, range: SourceRange): OpenedSource {
  const args = strfryArgs(spec, range);
  const describe = [spec.bin, ...args].join(' ');
  const ac = new AbortController();
  const sub = execa(spec.bin, args, {
    buffer: false,
    reject: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    cancelSignal: ac.signal,
    forceKillAfterDelay: 5000,
  });
  let stderr = '';
  sub.stderr?.setEncoding('utf8');
  sub.stderr?.on('data', (d: string) => {
    stderr = (stderr + d).slice(-STDERR_TAIL);
  });
  let readError: string | null = null;
  async function* chunks(): AsyncGenerator<Buffer> {
    if (!sub.stdout) return;
    try {
      for await (const c of sub.stdout) yield c as Buffer;
    } catch (err) {
      readError = (err as Error).message;
    }
  }
  return {
    describe,
    chunks: chunks(),
    totalBytes: null,
    abort: () => ac.abort(),
    result: async () => {
      const r = await sub;
      if (ac.signal.aborted) return null;
      if (!r.failed) return readError;
      const code = (r as { code?: string }).code;
      if (code === 'ENOENT')
        return `strfry not found: "${spec.bin}" does not exist or is not in $PATH (give its path with --strfry or reconcile.strfry)`;
      if (code === 'EACCES') return `strfry cannot be run: "${spec.bin}" is not executable`;
      const how =
        r.exitCode !== undefined ? `exited with code ${r.exitCode}` : r.signal ? `was killed by ${r.signal}` : `failed (${r.shortMessage})`;
      const tail = stderr.trim().split('\n').slice(-5).join(' | ');
      return `${describe} ${how}${tail ? `: ${tail}` : ''}`;
    },
  };
}

async function openFile(path: string, startOffset: number): Promise<OpenedSource> {
  let size: number | null = null;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (err) {
    const message = `cannot read ${path}: ${(err as Error).message}`;
    return { describe: path, chunks: (async function* () {})(), totalBytes: null, abort: () => {}, result: async () => message };
  }
  const stream = createReadStream(path, { start: startOffset, highWaterMark: READ_CHUNK });
  return fromStream(path, stream, size - startOffset, () => stream.destroy());
}

function fromStream(describe: string, stream: NodeJS.ReadableStream, totalBytes: number | null, stop: () => void): OpenedSource {
  let error: string | null = null;
  let aborted = false;
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      for await (const c of stream) yield typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
    } catch (err) {
      if (!aborted) error = `cannot read ${describe}: ${(err as Error).message}`;
    }
  }
  return {
    describe,
    chunks: chunks(),
    totalBytes,
    abort: () => {
      aborted = true;
      stop();
    },
    result: async () => (aborted ? null : error),
  };
}
