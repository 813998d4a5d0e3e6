// A reader process for tests: resolves many authors on one bridge with the library (one DHT node
// and one torrent client for all), and prints `{ "<author>": ["<event id>", ...] }` as one JSON line.
// argv[2]: JSON { bootstrap: string[], bridge: string, authors: string[], concurrency?: number }.
import { createReader } from '../../scripts/reader/index.js';

const args = JSON.parse(process.argv[2] ?? '{}') as {
  bootstrap: string[];
  bridge: string;
  authors: string[];
  concurrency?: number;
  minEvents?: number;
};
const reader = await createReader({
  bootstrap: args.bootstrap,
  bind: '127.0.0.1',
  // Every node here is bittorrent-dht on loopback (no libtorrent bans): a slow pacer would hold later lookup rounds back.
  dhtNodeRate: 500,
  limits: { bundleTimeoutMs: 15_000, swarmTimeoutMs: 30_000, pointerTimeoutMs: 10_000 },
});
const out: Record<string, string[]> = {};
const problems: Record<string, unknown> = {};
let next = 0;
try {
  await Promise.all(
    Array.from({ length: args.concurrency ?? 4 }, async () => {
      while (next < args.authors.length) {
        const a = args.authors[next++]!;
        const r = await reader.resolve(a, { bridges: [args.bridge] }).result;
        out[a] = r.events.map((e) => e.id);
        if (r.events.length < (args.minEvents ?? 1)) problems[a] = r.summary;
      }
    }),
  );
} finally {
  await reader.close();
}
process.stdout.write(JSON.stringify({ events: out, problems }) + '\n');
setTimeout(() => process.exit(0), 100).unref();
