// One library consumer in its own process, for bench/library-bench.ts: createReader, then one
// resolve, timed from the call to the first verified event and to the merged result. Prints one
// JSON line. Uses the package's library entry (what `import 'nostr-bt'` loads).
//
//   node dist/bench/library-child.js '{"bootstrap":[...],"bridge":"<hex>","author":"<hex>"}'
//   (no "bridge": the bridges are discovered through the DHT, and discovery's duration is reported)
import { createReader } from '../scripts/reader/index.js';

interface Args {
  bootstrap: string[];
  bridge?: string;
  author: string;
}

const spawnedAt = Number(process.env.LIBRARY_BENCH_SPAWNED_AT ?? Date.now());
const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const t0 = Date.now();
const reader = await createReader({ bootstrap: args.bootstrap, bind: '127.0.0.1', dhtNodeRate: 500, dhtQueryTimeoutMs: 500 });
const readyMs = Date.now() - t0;
try {
  const t1 = Date.now();
  const resolution = reader.resolve(args.author, args.bridge ? { bridges: [args.bridge] } : { discover: true });
  let firstEventMs: number | null = null;
  let firstEventAt = 0;
  let streamed = 0;
  for await (const _ of resolution) {
    if (firstEventMs === null) {
      firstEventAt = Date.now();
      firstEventMs = firstEventAt - t1;
    }
    streamed++;
  }
  const { events, summary } = await resolution.result;
  process.stdout.write(
    JSON.stringify({
      ok: summary.found,
      readyMs,
      firstEventMs,
      allMs: Date.now() - t1,
      events: events.length,
      streamed,
      fromSpawnToFirstMs: firstEventAt - spawnedAt,
      discoveryMs: summary.discovery?.durationMs ?? null,
    }) + '\n',
  );
} finally {
  await reader.close();
}
