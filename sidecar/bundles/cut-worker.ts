// The bundle cut worker: builds window bundles (bundles/cut.ts) off the main thread, one request
// at a time, and answers each with the bundle or the error that stopped it.
import { parentPort } from 'node:worker_threads';
import { buildCut, type CutRefs } from './cut.js';

export interface CutRequest {
  id: number;
  root: string;
  logPath: string;
  refs: CutRefs;
}

export type CutReply = { id: number; result: Awaited<ReturnType<typeof buildCut>> } | { id: number; error: string };

const port = parentPort;
if (!port) throw new Error('bundle-cut-worker.js runs as a worker thread');
let chain = Promise.resolve();
port.on('message', (req: CutRequest) => {
  chain = chain.then(async () => {
    let reply: CutReply;
    try {
      reply = { id: req.id, result: await buildCut(req.root, req.logPath, req.refs) };
    } catch (err) {
      reply = { id: req.id, error: err instanceof Error ? err.message : String(err) };
    }
    const torrent = 'result' in reply ? reply.result.built?.torrent : undefined;
    port.postMessage(reply, torrent ? [torrent.buffer as ArrayBuffer] : []);
  });
});
