// A relay-bench publisher process: one websocket connection to the stand-in relay sending its
// share of pre-signed events (lines i, i+P, i+2P, ... of a JSONL file) as ["EVENT", …] messages,
// at most `window` unanswered at a time, or paced at a given rate. Commands on stdin, one per line:
//   go <file> [rate]   send that file's share (rate events/s, or as fast as OKs come back)
//   exit
// Each `go` ends with one line on stdout: {"ok":n,"failed":n,"ms":wall}.
//   node relay-publisher.js <url> <index> <publishers> <window>
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';

const [url, indexArg, countArg, windowArg] = process.argv.slice(2);
const index = Number(indexArg);
const count = Number(countArg);
const window = Number(windowArg);

const ws = new WebSocket(url!, { perMessageDeflate: false });
let onOk: ((ok: boolean) => void) | null = null;
ws.on('message', (raw: Buffer) => {
  const s = raw.toString('utf8');
  if (s.startsWith('["OK"')) onOk?.(s.includes('",true,'));
});
ws.on('error', (err) => {
  process.stderr.write(`publisher ${index}: ${err.message}\n`);
  process.exit(1);
});

function share(file: string): string[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: string[] = [];
  for (let i = index; i < lines.length; i += count) if (lines[i]) out.push(`["EVENT",${lines[i]}]`);
  return out;
}

function go(file: string, rate: number | null): Promise<{ ok: number; failed: number; ms: number }> {
  const msgs = share(file);
  const t0 = performance.now();
  return new Promise((resolve) => {
    let sent = 0;
    let answered = 0;
    let ok = 0;
    let timer: NodeJS.Timeout | null = null;
    const done = () => {
      if (timer) clearInterval(timer);
      onOk = null;
      resolve({ ok, failed: answered - ok, ms: performance.now() - t0 });
    };
    const pump = () => {
      const due = rate === null ? msgs.length : Math.min(msgs.length, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
      while (sent < due && sent - answered < window) ws.send(msgs[sent++]!);
    };
    onOk = (good) => {
      answered++;
      if (good) ok++;
      if (answered === msgs.length) done();
      else if (rate === null) pump();
    };
    if (msgs.length === 0) return done();
    if (rate !== null) timer = setInterval(pump, 5);
    pump();
  });
}

ws.on('open', () => {
  process.stdout.write('ready\n');
  let chain = Promise.resolve();
  createInterface({ input: process.stdin }).on('line', (l) => {
    const [cmd, file, rate] = l.split(' ');
    if (cmd === 'exit') {
      ws.close();
      setTimeout(() => process.exit(0), 100).unref();
      return;
    }
    if (cmd === 'go')
      chain = chain.then(async () => void process.stdout.write(JSON.stringify(await go(file!, rate ? Number(rate) : null)) + '\n'));
  });
});
