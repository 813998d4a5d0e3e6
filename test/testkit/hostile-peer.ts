// Misbehaving BitTorrent peers (raw TCP, loopback only) and /proc probes of a process, for the
// fault tests and the fault benchmark.
import { connect, type Socket } from 'node:net';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A `kB` field of /proc/<pid>/status (0 if the process is gone). */
function procStatusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resident memory of a process in kB (0 if it is gone). */
export function rssKb(pid: number): number {
  return procStatusKb(pid, 'VmRSS');
}

/** Anonymous resident memory (heap, buffers) in kB: RSS without file-backed pages such as LMDB's map. */
export function rssAnonKb(pid: number): number {
  return procStatusKb(pid, 'RssAnon');
}

/** Inodes of the sockets a process holds open. */
export function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

export interface InetSocket {
  proto: 'tcp' | 'tcp6' | 'udp' | 'udp6';
  local: string;
  port: number;
  /** TCP state 0A = LISTEN; UDP sockets are "07" (unconnected). */
  state: string;
  inode: string;
}

function hexAddr(hex: string, v6: boolean): string {
  if (!v6) return [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join('.');
  // Four little-endian 32-bit words.
  const words = [0, 1, 2, 3].map((w) =>
    hex
      .slice(w * 8, w * 8 + 8)
      .match(/../g)!
      .reverse()
      .join(''),
  );
  const groups = words
    .join('')
    .match(/..../g)!
    .map((g) => parseInt(g, 16).toString(16));
  return groups
    .join(':')
    .replace(/\b(?:0:){2,}/, '::')
    .replace(/^0::/, '::');
}

/** Internet sockets of a process (from /proc/net/*), with their local address and state. */
export function inetSockets(pid: number): InetSocket[] {
  const mine = socketInodes(pid);
  const out: InetSocket[] = [];
  for (const proto of ['tcp', 'tcp6', 'udp', 'udp6'] as const) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${proto}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.trim().split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const [addr, port] = f[1]!.split(':');
      const inode = f[9]!;
      if (!mine.has(inode)) continue;
      out.push({ proto, local: hexAddr(addr!, proto.endsWith('6')), port: parseInt(port!, 16), state: f[3]!, inode });
    }
  }
  return out;
}

export function isLoopback(addr: string): boolean {
  return addr.startsWith('127.') || addr === '::1' || addr === '::ffff:127.0.0.1';
}

/** `n` TCP connections that never send a byte (the caller destroys them). */
export async function idleConnections(port: number, n: number): Promise<Socket[]> {
  const socks: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = connect({ port, host: '127.0.0.1' });
    s.on('error', () => {});
    socks.push(s);
    if (i % 50 === 49) await sleep(5);
  }
  await sleep(200);
  return socks;
}

function message(id: number, ...ints: number[]): Buffer {
  const b = Buffer.alloc(5 + 4 * ints.length);
  b.writeUInt32BE(1 + 4 * ints.length, 0);
  b[4] = id;
  ints.forEach((v, i) => void b.writeUInt32BE(v, 5 + 4 * i));
  return b;
}

export interface SlowReader {
  socket: Socket;
  unchoked: boolean;
  requested: number;
}

/**
 * A leecher that handshakes, says it is interested, waits to be unchoked, then requests every
 * block of the torrent `rounds` times over and never reads another byte.
 */
export async function slowReader(
  port: number,
  infoHash: string,
  t: { pieceLength: number; length: number },
  opts: { requests: number; timeoutMs?: number },
): Promise<SlowReader> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  const peerId = Buffer.from('-NB0000-' + Math.random().toString(36).slice(2, 14).padEnd(12, '0'));
  socket.write(
    Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), Buffer.alloc(8), Buffer.from(infoHash, 'hex'), peerId]),
  );
  let buf = Buffer.alloc(0);
  let handshaken = false;
  let unchoked = false;
  const onData = (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    if (!handshaken && buf.length >= 68) {
      handshaken = true;
      buf = buf.subarray(68);
      socket.write(message(2)); // interested
    }
    while (handshaken && buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (buf.length < 4 + len) break;
      if (len > 0 && buf[4] === 1) unchoked = true;
      buf = buf.subarray(4 + len);
    }
  };
  socket.on('data', onData);
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  while (!unchoked && !socket.destroyed && Date.now() < deadline) await sleep(10);
  socket.off('data', onData);
  socket.pause(); // from now on nothing is read: the seeder's answers pile up on its side
  const BLOCK = 16 * 1024;
  const blocks: [number, number, number][] = [];
  for (let off = 0; off < t.length; off += BLOCK) {
    blocks.push([
      Math.floor(off / t.pieceLength),
      off % t.pieceLength,
      Math.min(BLOCK, t.length - off, t.pieceLength - (off % t.pieceLength)),
    ]);
  }
  let requested = 0;
  for (let i = 0; i < opts.requests && unchoked && !socket.destroyed; i++) {
    const [index, begin, length] = blocks[i % blocks.length]!;
    requested++;
    if (!socket.write(message(6, index, begin, length))) {
      // The seeder stopped reading requests too: that is a bound as well.
      const drained = await Promise.race([new Promise((r) => socket.once('drain', () => r(true))), sleep(2000).then(() => false)]);
      if (!drained) break;
    }
  }
  return { socket, unchoked, requested };
}
