// A judge worker: judges batches of ingest lines off the ingest thread (see judge-pool.ts).
// Replies in request order.
import { parentPort } from 'node:worker_threads';
import { judgeRequest, transferables, type JudgeRequest } from './judge-wire.js';
import { initSignatureCheck } from './nostr-event.js';
import type { PolicyConfig } from './policy.js';

const port = parentPort;
if (!port) throw new Error('judge-worker.js runs as a worker thread');
const ready = initSignatureCheck();
// The first message says the worker can judge (the pool judges inline until then).
void ready.then(() => port.postMessage('ready'));
let policy: PolicyConfig | null = null;

port.on('message', (req: JudgeRequest) => {
  // Chained on one promise: requests that arrive before the WASM is loaded keep their order.
  void ready.then(() => {
    if (req.crash) throw new Error('judge worker crash requested (test)');
    if (req.policy) policy = req.policy;
    if (!policy) throw new Error('judge worker got a request before any policy');
    const reply = judgeRequest(req, policy);
    port.postMessage(reply, transferables(reply));
  });
});
