// The check of a downloaded bundle (verify-bundle.ts) spread over worker threads: the Schnorr
// signature of every event is most of a mirror's catch-up time (≈ 0.5 ms an event, one thread).
// The bundle's files are cut into runs of about equal bytes, one worker each, started for this
// bundle and ended with it; the verdict is the same as one thread's (events summed, the first bad
// line in file order). Small bundles are checked on the calling thread (a worker costs a start).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { verifyBundleData, type BundleVerdict } from './verify-bundle.js';
import type { VerifyJob } from './verify-worker.js';

/** Below this a bundle is checked inline. */
const MIN_PARALLEL_BYTES = 4 * 1024 * 1024;
const MAX_THREADS = 8;

export function verifyThreads(): number {
  return Math.max(1, Math.min(MAX_THREADS, availableParallelism()));
}

export async function verifyBundleParallel(
  dataPath: string,
  files: readonly { name: string; length: number }[],
  maxEventBytes: number,
  threads = verifyThreads(),
  minParallelBytes = MIN_PARALLEL_BYTES,
): Promise<BundleVerdict> {
  const total = files.reduce((n, f) => n + f.length, 0);
  const runs = Math.min(threads, files.length);
  if (runs <= 1 || total < minParallelBytes) return verifyBundleData(dataPath, files, maxEventBytes);
  const jobs: VerifyJob[] = [];
  const share = total / runs;
  let run: { name: string; length: number }[] = [];
  let runBytes = 0;
  let startOffset = 0;
  let offset = 0;
  for (const f of files) {
    run.push({ name: f.name, length: f.length });
    runBytes += f.length;
    offset += f.length;
    if (runBytes >= share && jobs.length < runs - 1) {
      jobs.push({ dataPath, files: run, startOffset, maxEventBytes });
      run = [];
      runBytes = 0;
      startOffset = offset;
    }
  }
  if (run.length > 0) jobs.push({ dataPath, files: run, startOffset, maxEventBytes });
  const verdicts = await Promise.all(jobs.map(runJob));
  let events = 0;
  for (const v of verdicts) {
    events += v.events;
    if (!v.ok) return { ok: false, events, problem: v.problem };
  }
  return { ok: true, events };
}

function runJob(job: VerifyJob): Promise<BundleVerdict> {
  return new Promise((resolve) => {
    const w = new Worker(new URL('./verify-worker.js', import.meta.url), { workerData: job });
    let verdict: BundleVerdict | null = null;
    w.once('message', (v: BundleVerdict) => (verdict = v));
    w.once('error', (err) => (verdict ??= { ok: false, events: 0, problem: `check failed: ${err.message}` }));
    w.once('exit', () => resolve(verdict ?? { ok: false, events: 0, problem: 'check failed: the worker exited' }));
  });
}
