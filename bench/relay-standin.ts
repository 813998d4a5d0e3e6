// The strfry stand-in of relay-bench.ts, as a process: websocket connections on this thread
// (parse the client's message, hand the event on), the single writer thread (relay-writer.ts)
// doing the signature check, the plugin call and the LMDB write. Prints one JSON line when ready
// ({"port":…,"pluginPid":…}); on stdin, "times" prints the plugin's accept times, "close" stops.
//   node relay-standin.js '<json WriterData>'
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import { WebSocketServer, type WebSocket } from 'ws';
import type { WriterData, WriterIn, WriterOut } from './relay-writer.js';

const data = JSON.parse(process.argv[2]!) as WriterData;
const writer = new Worker(new URL('./relay-writer.js', import.meta.url), { workerData: data });
const conns = new Map<number, WebSocket>();
let nextConn = 0;

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('connection', (ws) => {
  const c = nextConn++;
  conns.set(c, ws);
  ws.on('message', (raw: Buffer) => {
    let msg: unknown;
    try {
      msg = JSON.parse(raw.toString('utf8'));
    } catch {
      ws.send('["NOTICE","error: bad JSON"]');
      return;
    }
    if (!Array.isArray(msg) || msg[0] !== 'EVENT' || typeof msg[1] !== 'object') {
      ws.send('["NOTICE","error: only EVENT here"]');
      return;
    }
    writer.postMessage({ c, e: msg[1] } as WriterIn);
  });
  ws.on('close', () => conns.delete(c));
  ws.on('error', () => {});
});

let listening = false;
let writerReady: { pluginPid: number | null } | null = null;
const announce = () => {
  if (listening && writerReady) {
    const addr = wss.address() as { port: number };
    process.stdout.write(JSON.stringify({ port: addr.port, pluginPid: writerReady.pluginPid }) + '\n');
  }
};
wss.on('listening', () => {
  listening = true;
  announce();
});

writer.on('message', (m: WriterOut) => {
  if ('oks' in m) {
    for (const [c, id, ok, msg] of m.oks) conns.get(c)?.send(`["OK","${id}",${ok},${JSON.stringify(msg)}]`);
  } else if ('times' in m) process.stdout.write(JSON.stringify({ times: m.times }) + '\n');
  else if ('ready' in m) {
    writerReady = { pluginPid: m.pluginPid };
    announce();
  } else if ('closed' in m) {
    wss.close();
    for (const ws of conns.values()) ws.terminate();
    void writer.terminate().then(() => process.exit(0));
  }
});
writer.on('error', (err) => {
  process.stderr.write(`stand-in writer failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});

createInterface({ input: process.stdin }).on('line', (l) => {
  if (l === 'times') writer.postMessage({ cmd: 'times' } as WriterIn);
  else if (l === 'close') writer.postMessage({ cmd: 'close' } as WriterIn);
});
process.stdin.on('end', () => writer.postMessage({ cmd: 'close' } as WriterIn));
