// A verify-pool thread (verify-pool.ts): checks one author file's lines as verifyJsonl does and
// sends back the events that pass and the rejections by reason.
import { parentPort } from 'node:worker_threads';
import { initSignatureCheck } from '../../sidecar/formats/nostr-event.js';
import { Rejections, verifyJsonl } from './verify-events.js';

export interface VerifyTask {
  id: number;
  bytes: Uint8Array;
  author: string;
  maxEventBytes: number;
}

await initSignatureCheck();
parentPort!.on('message', (t: VerifyTask) => {
  const rejections = new Rejections();
  const events = verifyJsonl(Buffer.from(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength), t.author, rejections, {
    maxEventBytes: t.maxEventBytes,
  });
  parentPort!.postMessage({ id: t.id, events, rejected: rejections.counts });
});
parentPort!.postMessage({ ready: true });
