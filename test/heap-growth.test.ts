// service.heapGrowthPercent reaches V8: with a fixed growth factor the heap stays near its live
// size under the allocation pattern of ingest (long-lived records plus a stream of short-lived
// strings), where V8's own heuristics let it grow to several times that.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MODULE = fileURLToPath(new URL('../sidecar/ops/heap-growth.js', import.meta.url));

/** Peak heapTotal (MB) of a child that applies `percent`, holds ~30 MB and churns ~1 GB. */
function peakHeapMb(percent: number): number {
  const script = `
    import { applyHeapGrowth } from ${JSON.stringify(MODULE)};
    applyHeapGrowth(${percent});
    const live = [];
    for (let i = 0; i < 200000; i++) live.push({ s: 'x'.repeat(100) + i, n: i });
    let peak = 0, batch = [];
    for (let r = 0; r < 150; r++) {
      for (let i = 0; i < 20000; i++) batch.push('y'.repeat(200) + i + r);
      if (batch.length > 100000) batch = [];
      peak = Math.max(peak, process.memoryUsage().heapTotal);
    }
    process.stdout.write(String(peak / 1e6) + ' ' + live.length);
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  const [mb, live] = out.split(' ');
  assert.equal(live, '200000');
  return Number(mb);
}

test('heap growth: a fixed 10% growth keeps the heap well below what V8 grows to by default', () => {
  const fixed = peakHeapMb(10);
  const heuristic = peakHeapMb(0);
  assert.ok(fixed < 0.6 * heuristic, `peak heapTotal ${fixed.toFixed(0)} MB with 10%, ${heuristic.toFixed(0)} MB with V8's heuristics`);
});
