// The stand-in relay's single writer thread (see relay-bench.ts): like strfry's RelayWriter, it
// takes every event queued so far and, per event, checks the Schnorr signature, skips a duplicate,
// asks the write-policy plugin synchronously (one line out on a FIFO, a blocking read of the reply
// line), then writes the accepted events to LMDB in one transaction and hands back the OKs.
// The plugin runs as strfry runs it: `/bin/sh -c '<command>'`, stdin and stdout redirected to two
// FIFOs that this thread reads and writes with blocking system calls, so while the plugin thinks
// this thread waits, as strfry's does.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, writeSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { open } from 'lmdb';
import { initNostrWasm } from 'nostr-wasm';
import type { NostrEvent } from '../sidecar/formats/nostr-event.js';

export interface WriterData {
  dbDir: string;
  /** Plugin command (run through /bin/sh -c), or null: no write policy. */
  plugin: string | null;
  env: Record<string, string>;
  fifoDir: string;
  pluginStderr: string;
}

type Ev = NostrEvent;

/** From the websocket thread: [connection, event] per event, or a command. */
export type WriterIn = { c: number; e: Ev } | { cmd: 'times' } | { cmd: 'close' };
/** To the websocket thread: the OKs of one batch, or the accept times asked for. */
export type WriterOut =
  | { oks: [number, string, boolean, string][] }
  | { times: number[] }
  | { ready: true; pluginPid: number | null }
  | { closed: true };

const data = workerData as WriterData;
const port = parentPort!;
const wasm = await initNostrWasm();
const db = open<string, string>({ path: data.dbDir, encoding: 'string', compression: false, noSync: true });

let inFd = -1;
let outFd = -1;
let pluginPid: number | null = null;
if (data.plugin !== null) {
  const fin = join(data.fifoDir, 'plugin.in');
  const fout = join(data.fifoDir, 'plugin.out');
  const errStream = createWriteStream(data.pluginStderr);
  const child = spawn('/bin/sh', ['-c', `${data.plugin} < '${fin}' > '${fout}'`], { stdio: ['ignore', 'ignore', 'pipe'], env: data.env });
  child.stderr!.pipe(errStream);
  pluginPid = child.pid ?? null;
  // The shell opens its stdin first (blocks until we open the write end), then its stdout.
  inFd = openSync(fin, 'w');
  outFd = openSync(fout, 'r');
}

const readBuf = Buffer.allocUnsafe(64 * 1024);
let pending = '';

/** One line to the plugin, then a blocking wait for its reply line (strfry's synchronous call). */
function askPlugin(line: string, id: string): { ok: boolean; msg: string } {
  const out = Buffer.from(line + '\n');
  for (let off = 0; off < out.length; ) off += writeSync(inFd, out, off);
  for (;;) {
    const nl = pending.indexOf('\n');
    if (nl >= 0) {
      const reply = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let r: { id?: string; action?: string; msg?: string };
      try {
        r = JSON.parse(reply) as typeof r;
      } catch {
        continue; // strfry only warns about a non-JSON line
      }
      if (r.id !== id) throw new Error(`plugin answered id ${r.id} for ${id}`);
      if (r.action === 'accept') return { ok: true, msg: '' };
      return { ok: false, msg: r.action === 'shadowReject' ? '' : (r.msg ?? 'blocked') };
    }
    const n = readSync(outFd, readBuf, 0, readBuf.length, null);
    if (n === 0) throw new Error('plugin closed its stdout');
    pending += readBuf.toString('utf8', 0, n);
  }
}

/** strfry's plugin input line: keys sorted, minified (docs/strfry-plugin-protocol.md). */
function pluginLine(e: Ev, receivedAt: number): string {
  return (
    `{"event":{"content":${JSON.stringify(e.content)},"created_at":${e.created_at},"id":"${e.id}","kind":${e.kind},` +
    `"pubkey":"${e.pubkey}","sig":"${e.sig}","tags":${JSON.stringify(e.tags)}},` +
    `"receivedAt":${receivedAt},"sourceInfo":"127.0.0.1","sourceType":"IP4","type":"new"}`
  );
}

/** Epoch ms at which the plugin accepted each event (for accept → indexed latency). */
let acceptTimes: number[] = [];

function handle(batch: WriterIn[]): void {
  const oks: [number, string, boolean, string][] = [];
  const toWrite: [string, string][] = [];
  const now = Math.floor(Date.now() / 1000);
  for (const m of batch) {
    if ('cmd' in m) {
      if (m.cmd === 'times') {
        port.postMessage({ times: acceptTimes } satisfies WriterOut);
        acceptTimes = [];
      } else close();
      continue;
    }
    const e = m.e;
    try {
      wasm.verifyEvent(e as never);
    } catch {
      oks.push([m.c, e.id, false, 'invalid: bad signature']);
      continue;
    }
    if (db.get(e.id) !== undefined) {
      oks.push([m.c, e.id, true, 'duplicate: have this event']);
      continue;
    }
    if (inFd >= 0) {
      const v = askPlugin(pluginLine(e, now), e.id);
      if (!v.ok) {
        oks.push([m.c, e.id, false, v.msg]);
        continue;
      }
      acceptTimes.push(performance.timeOrigin + performance.now());
    }
    toWrite.push([e.id, JSON.stringify(e)]);
    oks.push([m.c, e.id, true, '']);
  }
  if (toWrite.length > 0) {
    db.transactionSync(() => {
      for (const [k, v] of toWrite) db.putSync(k, v);
    });
  }
  if (oks.length > 0) port.postMessage({ oks } satisfies WriterOut);
}

function close(): void {
  if (inFd >= 0) closeSync(inFd); // the plugin sees EOF and exits by itself
  inFd = -1;
  void db.close().then(() => port.postMessage({ closed: true } satisfies WriterOut));
}

port.on('message', (first: WriterIn) => {
  // Everything queued meanwhile goes in the same batch, as strfry's writer takes its whole queue.
  const batch: WriterIn[] = [first];
  for (let r = receiveMessageOnPort(port); r !== undefined; r = receiveMessageOnPort(port)) batch.push(r.message as WriterIn);
  handle(batch);
});
port.postMessage({ ready: true, pluginPid } satisfies WriterOut);
