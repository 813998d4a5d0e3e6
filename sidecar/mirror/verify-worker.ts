// Checks one run of a downloaded bundle's files in a worker thread (see verify-parallel.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { initSignatureCheck } from '../formats/nostr-event.js';
import { verifyBundleData, type BundleVerdict } from './verify-bundle.js';

export interface VerifyJob {
  dataPath: string;
  files: { name: string; length: number }[];
  startOffset: number;
  maxEventBytes: number;
}

const port = parentPort;
if (!port) throw new Error('verify-worker.js runs as a worker thread');
const job = workerData as VerifyJob;
void (async () => {
  let verdict: BundleVerdict;
  try {
    await initSignatureCheck();
    verdict = await verifyBundleData(job.dataPath, job.files, job.maxEventBytes, job.startOffset);
  } catch (err) {
    verdict = { ok: false, events: 0, problem: `check failed: ${(err as Error)?.message ?? String(err)}` };
  }
  port.postMessage(verdict);
})();
