// What judging lines in a worker (sidecar/judge/pool.ts) costs the ingest thread, per event:
//   send    = copying the batch's lines (bytes as the socket gave them) into one buffer and
//             posting the request (structured clone: one copy of that buffer);
//   receive = reading the worker's reply (typed arrays and the canonical JSON as one transferred
//             buffer: the columns the index applies, sidecar/judge/event-batch.ts);
// against the baseline measured in the same run: judging on the ingest thread (judgeThreads = 0).
// Then the wall time of a real pool (one worker) judging the same batches, for reference.
// Prints figures; never asserts timings.
//
//   node dist/bench/judge-bench.js [--quick] [--n=COUNT]
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { join } from 'node:path';
import { loadConfig } from '../sidecar/common/config.js';
import { createLogger } from '../sidecar/common/log.js';
import { JudgePool, judgeInline } from '../sidecar/judge/pool.js';
import { ID_VERIFIED, judgeRequest, packLines, transferables, type JudgeReply, type JudgeRequest } from '../sidecar/judge/wire.js';
import { contentOf, pluginLine, pubkeyN, unsignedEvent } from '../test/testkit/events.js';
import { figure, fmt, log, makeTempDir, parseArgs, printFigures, prng, runMain, writeConfig } from './common.js';

const BATCH = 2000;
/** A relay's batch: 250 ms (ingest.batchMaxDelayMs) at 2,000 events/s. */
const RELAY_BATCH = 500;

/** ~1 KB events like the ingest bench's: kind 1 with tags, 10% kind 7, 10% kind 0/3 (replaceable). */
function makeLines(n: number): string[] {
  const rnd = prng(11);
  const now = Math.floor(Date.now() / 1000);
  return Array.from({ length: n }, (_, i) => {
    const r = rnd();
    const kind = r < 0.8 ? 1 : r < 0.9 ? 7 : r < 0.95 ? 0 : 3;
    const tags =
      kind === 1 || kind === 7
        ? [
            ['e', pubkeyN(1_000_000 + i)],
            ['p', pubkeyN(i % 977)],
          ]
        : [];
    return pluginLine(unsignedEvent(pubkeyN(i % 5000), { kind, created_at: now - 86_400 + i, tags, content: contentOf(1024, i) }), {
      receivedAt: now,
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const args = parseArgs();
  const n = args.n ?? (args.quick ? 20_000 : 100_000);
  const lines = makeLines(n);
  // As the ingest server hands them over: one Buffer per line, undecoded.
  const batches: Buffer[][] = [];
  for (let i = 0; i < n; i += BATCH) batches.push(lines.slice(i, i + BATCH).map((l) => Buffer.from(l)));
  const cfgDir = makeTempDir('nostr-bt-judge-bench-');
  const config = loadConfig({ configPath: writeConfig(cfgDir, join(cfgDir, 'data')), env: {} });
  const policy = { ...config.policy, maxEventBytes: config.ingest.maxEventBytes };
  const now = Math.floor(Date.now() / 1000);
  log(`judge bench: ${n} lines in batches of ${BATCH}`);

  // Per batch, µs per line: inline judging (baseline), send, receive.
  const inline: number[] = [];
  const send: number[] = [];
  const receive: number[] = [];
  const { port1, port2 } = new MessageChannel();
  for (let round = 0; round < 3; round++) {
    for (const b of batches) {
      let t = performance.now();
      judgeInline(packLines(b), false, policy, now);
      inline.push(((performance.now() - t) * 1000) / b.length);

      t = performance.now();
      const req: JudgeRequest = { seq: 1, lines: packLines(b), verify: false, nowSec: now };
      port1.postMessage(req);
      send.push(((performance.now() - t) * 1000) / b.length);
      const got = receiveMessageOnPort(port2)!.message as JudgeRequest;

      // The worker's side, here, to have a reply to receive.
      const reply = judgeRequest(got, policy);
      port2.postMessage(reply, transferables(reply));
      t = performance.now();
      const r = receiveMessageOnPort(port1)!.message as JudgeReply;
      receive.push(((performance.now() - t) * 1000) / b.length);
      if (r.status.length !== b.length) throw new Error('the reply has the wrong length');
    }
  }
  port1.close();
  const inlineUs = median(inline);
  const sendUs = median(send);
  const receiveUs = median(receive);
  log(`judgeLine on the ingest thread (baseline): ${fmt(inlineUs, 2)} µs per line (median of ${inline.length} batches)`);
  log(
    `worker: send ${fmt(sendUs, 2)} µs + receive ${fmt(receiveUs, 2)} µs per line = ${fmt((100 * (sendUs + receiveUs)) / inlineUs, 1)}% of the baseline`,
  );

  // A real pool: wall time for the same batches, two in flight as the Ingestor does.
  const pool = new JudgePool(1, createLogger('judge-bench', 'silent'));
  await pool.judge(packLines(batches[0]!), false, policy, now); // starts the worker
  const t0 = performance.now();
  for (let i = 0; i < batches.length; i += 2)
    await Promise.all(batches.slice(i, i + 2).map((b) => pool.judge(packLines(b), false, policy, now)));
  const poolUs = ((performance.now() - t0) * 1000) / n;
  await pool.close();
  log(`pool (1 worker, 2 batches in flight): ${fmt(poolUs, 2)} µs per line wall time`);

  // A plugin connection's lines (strfry verified their ids: ID_VERIFIED) against the same lines with
  // the id checked, alternated batch by batch, in a relay's batch size (250 ms at 2,000 events/s).
  const relayBatches: Buffer[][] = [];
  for (let i = 0; i < n; i += RELAY_BATCH) relayBatches.push(lines.slice(i, i + RELAY_BATCH).map((l) => Buffer.from(l)));
  const checked: number[] = [];
  const trusted: number[] = [];
  for (let round = 0; round < 3; round++) {
    for (const [i, b] of relayBatches.entries()) {
      const flags = new Uint8Array(b.length).fill(ID_VERIFIED);
      for (const mode of i % 2 === 0 ? [0, 1] : [1, 0]) {
        const packed = packLines(b);
        const t = performance.now();
        judgeInline(packed, mode === 0 ? false : flags, policy, now);
        (mode === 0 ? checked : trusted).push(((performance.now() - t) * 1000) / b.length);
      }
    }
  }
  const checkedUs = median(checked);
  const trustedUs = median(trusted);
  log(
    `plugin connection (ids verified by strfry): ${fmt(trustedUs, 2)} µs per line against ${fmt(checkedUs, 2)} with the id checked (batches of ${RELAY_BATCH}, alternated)`,
  );

  printFigures(
    'judge',
    [
      figure('judgeLine on the ingest thread (baseline)', inlineUs, 'µs/line'),
      figure("judging a plugin connection's lines (ids verified by strfry)", trustedUs, 'µs/line', checkedUs),
      figure('worker judging: ingest thread sends a batch', sendUs, 'µs/line', inlineUs),
      figure('worker judging: ingest thread receives a reply', receiveUs, 'µs/line', inlineUs),
      figure('worker judging: wall time through a one-worker pool', poolUs, 'µs/line', inlineUs),
    ],
    { mode: args.quick ? 'quick' : 'full', n },
  );
}

runMain(main);
