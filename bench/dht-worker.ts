// A local DHT (test/testkit/local-dht.ts: bittorrent-dht nodes on 127.0.0.1) in a worker thread,
// for benchmarks that only need its bootstrap addresses: its nodes then answer on the other core
// instead of sharing the benchmark's event loop with the bridge that publishes to them.
// In: workerData {nodes}; out: {bootstrap} once up, or {error}; message 'stop' → {stopped}.
import { parentPort, workerData } from 'node:worker_threads';
import { startLocalDht } from '../test/testkit/local-dht.js';

const port = parentPort!;
try {
  const dht = await startLocalDht((workerData as { nodes: number }).nodes);
  port.on('message', (m: unknown) => {
    if (m === 'stop') void dht.stop().then(() => port.postMessage({ stopped: true }));
  });
  port.postMessage({ bootstrap: dht.bootstrap });
} catch (err) {
  port.postMessage({ error: (err as Error)?.stack ?? String(err) });
}
