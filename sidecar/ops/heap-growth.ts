// V8 lets the old generation grow to several times its live size before a full collection when
// allocation is fast (ingest allocates ~1 KB strings per event that survive a batch or two). At a
// million events that slack was ~250 MB of the sidecar's RSS. A fixed growth factor keeps the
// heap near its live size for a few more collections' worth of CPU (docs/config.md,
// service.heapGrowthPercent). V8 reads the flag at each limit computation, so setting it while
// running works, and SIGHUP can change it.
import { setFlagsFromString } from 'node:v8';

/** 0 restores V8's own heuristics. */
export function applyHeapGrowth(percent: number): void {
  setFlagsFromString(`--heap-growing-percent=${Math.max(0, Math.floor(percent))}`);
}
