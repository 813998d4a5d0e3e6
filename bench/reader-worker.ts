// Several benchmark readers in one worker thread (bench/reader-support.ts ReaderPool): each is
// its own reader (bench/reader-run.ts: its own DHT node, WebTorrent client and piece store); they
// share only the loaded modules, which is what a process per reader paid for again and again.
// Messages in: {start: id, args}, {release: id}. Out: {id, result} or {id, error}, {id, uploaded}.
import { parentPort } from 'node:worker_threads';
import { runRead, type FinishedRead, type ReaderArgs } from './reader-run.js';

export type ToWorker = { start: number; args: ReaderArgs } | { release: number };
export type FromWorker = { id: number; result: FinishedRead['result'] } | { id: number; error: string } | { id: number; uploaded: number };

const port = parentPort!;
const running = new Map<number, Promise<FinishedRead>>();

port.on('message', (m: ToWorker) => {
  if ('start' in m) {
    const id = m.start;
    const read = runRead(m.args);
    running.set(id, read);
    read.then(
      (r) => {
        port.postMessage({ id, result: r.result } satisfies FromWorker);
        if (!(m.args.mode !== 'relay' && m.args.linger)) void r.release();
      },
      (err: unknown) => port.postMessage({ id, error: (err as Error)?.stack ?? String(err) } satisfies FromWorker),
    );
  } else {
    const id = m.release;
    const read = running.get(id);
    running.delete(id);
    if (!read) return void port.postMessage({ id, uploaded: 0 } satisfies FromWorker);
    read
      .then((r) => r.release())
      .then(
        (uploaded) => port.postMessage({ id, uploaded } satisfies FromWorker),
        () => port.postMessage({ id, uploaded: 0 } satisfies FromWorker),
      );
  }
});
