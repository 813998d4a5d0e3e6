// A judge worker: judges batches of ingest lines off the ingest thread (see judge/pool.ts).
// Replies in request order.
import { parentPort } from 'node:worker_threads';
import { ArrayBufferPool } from '../common/array-buffer-pool.js';
import { judgeRequest, transferables, type JudgeMessage } from './wire.js';
import { initSignatureCheck } from '../formats/nostr-event.js';
import type { PolicyConfig } from '../policy/content-policy.js';

/** Reply buffers the ingest thread gave back, kept to write the next replies into. */
const SPARES = 2;

const port = parentPort;
if (!port) throw new Error('judge-worker.js runs as a worker thread');
const ready = initSignatureCheck();
// The first message says the worker can judge (the pool judges inline until then).
void ready.then(() => port.postMessage('ready'));
let policy: PolicyConfig | null = null;
const spares = new ArrayBufferPool(SPARES);

port.on('message', (msg: JudgeMessage) => {
  if ('spares' in msg) {
    for (const b of msg.spares) spares.give(b);
    return;
  }
  if ('trim' in msg) {
    spares.clear();
    return;
  }
  const req = msg;
  // Chained on one promise: requests that arrive before the WASM is loaded keep their order.
  void ready.then(() => {
    if (req.crash) throw new Error('judge worker crash requested (test)');
    if (req.policy) policy = req.policy;
    if (!policy) throw new Error('judge worker got a request before any policy');
    const reply = judgeRequest(req, policy, spares);
    port.postMessage(reply, transferables(reply));
  });
});
