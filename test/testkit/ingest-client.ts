// A minimal client of the sidecar's ingest socket (docs/protocol.md §2): writes lines, reads the
// cumulative acknowledgements.
import { connect, type Socket } from 'node:net';

export interface IngestClient {
  socket: Socket;
  /** The latest cumulative count the sidecar acknowledged on this connection. */
  acked(): number;
  /** Writes lines (each without its newline), respecting backpressure. */
  send(lines: Iterable<string>): Promise<void>;
  /** Resolves true once `n` lines are acknowledged, false at the deadline or on close. */
  waitAcked(n: number, timeoutMs?: number): Promise<boolean>;
  close(): void;
}

export async function ingestClient(path: string): Promise<IngestClient> {
  const socket = connect({ path });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  let acked = 0;
  let tail = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => {
    const parts = (tail + d).split('\n');
    tail = parts.pop()!;
    for (const p of parts) if (p.length > 0) acked = Math.max(acked, Number(p));
  });
  return {
    socket,
    acked: () => acked,
    async send(lines) {
      for (const l of lines) {
        if (!socket.write(l + '\n')) await new Promise<void>((r) => socket.once('drain', () => r()));
      }
    },
    async waitAcked(n, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (acked < n && !socket.destroyed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      return acked >= n;
    },
    close: () => socket.destroy(),
  };
}

/** Sends the lines on one connection and waits until all are acknowledged. */
export async function sendLines(path: string, lines: string[], timeoutMs = 30_000): Promise<number> {
  const c = await ingestClient(path);
  try {
    await c.send(lines);
    await c.waitAcked(lines.length, timeoutMs);
    return c.acked();
  } finally {
    c.close();
  }
}
