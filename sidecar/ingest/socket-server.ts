// The sidecar's Unix socket. Input: one line per event (a strfry plugin line or a bare event).
// Output: after each commit, the cumulative number of lines consumed on this connection, as a
// decimal line (see docs/protocol.md). Lines are counted whatever becomes of them, so the count
// always matches what the client sent.
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { chmod, chown, readFile, unlink, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { IngestSink } from './ingestor.js';
import { QUARANTINED_HEAD_BYTES, type Quarantine } from './quarantine.js';
import type { TextOrBytes } from '../common/text-or-bytes.js';
import { isCheckpoint, type Checkpoint } from '../index/checkpoints.js';

/** What the socket needs of ingest (the Ingestor): lines in, and back-pressure out. */
export interface SocketIntake {
  submit(line: TextOrBytes, sink: IngestSink): void;
  submitRun(bytes: Uint8Array, lines: number, sink: IngestSink): void;
  submitRejected(reason: string, sink: IngestSink): void;
  /** True above the high-water mark: connections pause until 'drain'. */
  readonly saturated: boolean;
  on(event: 'drain', listener: () => void): unknown;
}

/** Where a backfill connection's checkpoint is read and saved (index/checkpoints.ts CheckpointStore). */
export interface SocketCheckpoints {
  get(key: string): Checkpoint | undefined;
  put(key: string, cp: Checkpoint | null): Promise<void>;
}

export interface IngestServerOptions {
  path: string;
  mode: number;
  group?: string;
  maxLineBytes: number;
}

interface Conn extends IngestSink {
  sock: Socket;
  lines: number;
  consumed: number;
  paused: boolean;
  /** Cumulative outcomes, when the hello asked for them (`"tally":true`). */
  tally?: Record<string, number>;
  /** The backfill checkpoint this connection reads and saves (`"checkpoint":"<key>"` in the hello). */
  checkpointKey?: string;
}

const HELLO_PREFIX = Buffer.from('{"hello":');
const CHECKPOINT_PREFIX = Buffer.from('{"checkpoint":');

function startsWith(line: Buffer, prefix: Buffer): boolean {
  return startsWithAt(line, 0, line.length, prefix);
}

/** Whether the line at [from, end) of `buf` starts with `prefix`. */
function startsWithAt(buf: Buffer, from: number, end: number, prefix: Buffer): boolean {
  return end - from >= prefix.length && buf.compare(prefix, 0, prefix.length, from, from + prefix.length) === 0;
}
export const MAX_CHECKPOINT_KEY = 1000;
export const MAX_SOURCE_NAME = 40;

export class IngestServer {
  connections = 0;
  private server: Server | null = null;
  private readonly conns = new Set<Conn>();

  constructor(
    private readonly opts: IngestServerOptions,
    private readonly ingestor: SocketIntake,
    private readonly quarantine: Quarantine,
    private readonly log: Logger,
    /** A client connected: the spool drain scans (a plugin reconnecting may have spooled meanwhile). */
    private readonly onConnect: () => void = () => {},
    private readonly checkpoints: SocketCheckpoints | null = null,
  ) {
    ingestor.on('drain', () => this.resumeAll());
  }

  async listen(): Promise<void> {
    await mkdir(dirname(this.opts.path), { recursive: true, mode: 0o2770 });
    await removeStaleSocket(this.opts.path);
    const server = createServer((sock) => this.accept(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.path, () => resolve());
    });
    server.on('error', (err) => this.log.error({ err }, 'ingest socket error'));
    await chmod(this.opts.path, this.opts.mode);
    if (this.opts.group) await chown(this.opts.path, -1, await gidOf(this.opts.group));
    this.server = server;
  }

  async close(graceMs = 1000): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const c of this.conns) c.sock.end();
    // A client that never closes its end (stopped or hung) must not hold up the shutdown.
    const grace = setTimeout(() => {
      for (const c of this.conns) c.sock.destroy();
    }, graceMs);
    if (server) await new Promise<void>((r) => server.close(() => r()));
    clearTimeout(grace);
    for (const c of this.conns) c.sock.destroy();
  }

  private accept(sock: Socket): void {
    this.connections++;
    const conn: Conn = {
      sock,
      source: 'plugin',
      trusted: true,
      idsVerified: true,
      lines: 0,
      consumed: 0,
      paused: false,
      committed: (n) => {
        conn.consumed += n;
        if (sock.destroyed) return;
        sock.write(conn.tally ? JSON.stringify({ acked: conn.consumed, tally: conn.tally }) + '\n' : `${conn.consumed}\n`);
      },
    };
    this.conns.add(conn);
    this.onConnect();
    // Lines stay bytes here (a judge worker decodes them). The ordinary lines that a chunk holds
    // whole go to the ingestor as one run (a view of the chunk); a line spanning chunks is the
    // concatenation of its pieces; empty, hello and checkpoint lines go one by one (onLine).
    let carry: Buffer[] = [];
    let carried = 0;
    let discarding = false;
    sock.on('data', (chunk: Buffer) => {
      let start = 0;
      let nl: number;
      let runStart = 0;
      let runLines = 0;
      const endRun = (end: number) => {
        if (runLines > 0) this.ingestor.submitRun(chunk.subarray(runStart, end), runLines, conn);
        runLines = 0;
      };
      while ((nl = chunk.indexOf(0x0a, start)) >= 0) {
        const from = start;
        start = nl + 1;
        if (discarding) {
          discarding = false; // the tail of an oversized line, already counted
          continue;
        }
        if (carried > 0) {
          const line = Buffer.concat([...carry, chunk.subarray(from, nl)]);
          carry = [];
          carried = 0;
          this.onLine(conn, line);
          continue;
        }
        if (nl === from || conn.lines === 0 || (conn.checkpointKey !== undefined && startsWithAt(chunk, from, nl, CHECKPOINT_PREFIX))) {
          endRun(from);
          this.onLine(conn, chunk.subarray(from, nl));
          continue;
        }
        if (runLines === 0) runStart = from;
        runLines++;
        conn.lines++;
      }
      endRun(start);
      if (start < chunk.length && !discarding) {
        const rest = chunk.subarray(start);
        carry.push(rest);
        carried += rest.length;
        if (carried > this.opts.maxLineBytes) {
          this.quarantine.add('line-too-long', conn, Buffer.concat(carry).subarray(0, QUARANTINED_HEAD_BYTES).toString('utf8'));
          this.ingestor.submitRejected('line-too-long', conn);
          carry = [];
          carried = 0;
          discarding = true;
        }
      }
      if (this.ingestor.saturated && !conn.paused) {
        conn.paused = true;
        sock.pause();
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => this.conns.delete(conn));
  }

  private onLine(conn: Conn, line: Buffer): void {
    if (conn.lines++ === 0 && startsWith(line, HELLO_PREFIX)) {
      // Optional first line from non-plugin clients: {"hello":"backfill","trusted":false,"tally":true}
      try {
        // Only the plugin, which sends no hello, hands over strfry's lines as strfry verified them.
        (conn as { idsVerified: boolean }).idsVerified = false;
        const h = JSON.parse(line.toString('utf8')) as { hello?: unknown; trusted?: unknown; tally?: unknown; checkpoint?: unknown };
        if (typeof h.hello === 'string') (conn as { source: string }).source = h.hello.slice(0, MAX_SOURCE_NAME);
        if (typeof h.trusted === 'boolean') (conn as { trusted: boolean }).trusted = h.trusted;
        if (h.tally === true) {
          const tally: Record<string, number> = {};
          conn.tally = tally;
          conn.outcomes = (counts) => {
            for (const [k, v] of Object.entries(counts)) tally[k] = (tally[k] ?? 0) + v;
          };
        }
        if (typeof h.checkpoint === 'string' && this.checkpoints) {
          conn.checkpointKey = h.checkpoint.slice(0, MAX_CHECKPOINT_KEY);
          conn.sock.write(JSON.stringify({ checkpoint: this.checkpoints.get(conn.checkpointKey) ?? null }) + '\n');
        }
        this.ingestor.submit('', conn);
        return;
      } catch {
        /* an ordinary (malformed) line after all */
      }
    }
    if (conn.checkpointKey !== undefined && startsWith(line, CHECKPOINT_PREFIX)) {
      this.saveCheckpoint(conn, line.toString('utf8'));
      this.ingestor.submit('', conn); // counted as consumed, like the hello
      return;
    }
    this.ingestor.submit(line, conn);
  }

  /** `{"checkpoint":{...}}` (or null to forget it): describes lines already acknowledged. */
  private saveCheckpoint(conn: Conn, line: string): void {
    let value: unknown;
    try {
      value = (JSON.parse(line) as { checkpoint: unknown }).checkpoint;
    } catch {
      value = undefined;
    }
    if (value !== null && !isCheckpoint(value)) {
      this.log.warn({ source: conn.source, key: conn.checkpointKey }, 'malformed checkpoint line ignored');
      return;
    }
    this.checkpoints!.put(conn.checkpointKey!, value).catch((err) =>
      this.log.error({ err, key: conn.checkpointKey }, 'checkpoint write failed'),
    );
  }

  private resumeAll(): void {
    for (const c of this.conns) {
      if (c.paused) {
        c.paused = false;
        c.sock.resume();
      }
    }
  }
}

async function removeStaleSocket(path: string): Promise<void> {
  const alive = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`another sidecar is already listening on ${path}`);
  await unlink(path).catch(() => {});
}

async function gidOf(group: string): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  const lines = (await readFile('/etc/group', 'utf8')).split('\n');
  for (const l of lines) {
    const [name, , gid] = l.split(':');
    if (name === group && gid !== undefined) return Number(gid);
  }
  throw new Error(`socket.group: no such group "${group}"`);
}
