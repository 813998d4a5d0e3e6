// The fair token bucket behind every WebTorrent upload/download limit (sidecar/common/fair-throttle.ts):
// a waiting wire is served before anyone who asks later, and nobody takes tokens past it; it
// drops into a real WebTorrent client's throttle groups and follows throttleUpload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebTorrent from '../sidecar/common/webtorrent.js';
import { FairTokenBucket, useFairThrottles } from '../sidecar/common/fair-throttle.js';

test('fair bucket: waiters are served in the order they asked; tryRemoveTokens takes nothing past a waiter', async () => {
  const b = new FairTokenBucket(1000);
  const order: string[] = [];
  const take = (name: string, n: number) =>
    new Promise<void>((resolve, reject) =>
      b.removeTokens(n, (err) => {
        if (err) return reject(new Error(err));
        order.push(name);
        resolve();
      }),
    );
  // A greedy wire asking synchronously every few ms (the way the other wires of a throttle group
  // take tokens): with limiter's bucket it took every token that dripped in and the waiter starved.
  let greedyTaken = 0;
  let greedyRefused = 0;
  const greedy = setInterval(() => {
    for (let i = 0; i < 100; i++) {
      if (b.tryRemoveTokens(10)) greedyTaken++;
      else {
        greedyRefused++;
        break;
      }
    }
  }, 2);
  try {
    const all = Promise.all([take('a', 300), take('b', 200), take('c', 100)]);
    assert.equal(b.waiting, 3);
    assert.equal(b.tryRemoveTokens(1), false, 'nothing is taken past a waiter');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      all,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`waiters not served in 20 s: ${order}`)), 20_000))),
    ]);
    clearTimeout(timer);
    assert.deepEqual(order, ['a', 'b', 'c']);
    assert.equal(greedyTaken, 0, 'the greedy wire got nothing while others waited');
    assert.ok(greedyRefused > 0);
  } finally {
    clearInterval(greedy);
  }
  assert.equal(b.waiting, 0);
  // With nobody waiting, tokens that dripped in are taken at once.
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(b.tryRemoveTokens(10), true);
  await assert.rejects(take('too-big', 2000), /exceeds bucket size/);
});

test('fair bucket: a real WebTorrent client gets it for both directions and throttleUpload sets its rate', async () => {
  const client = new WebTorrent({
    dht: false,
    tracker: false,
    lsd: false,
    utp: false,
    natUpnp: false,
    natPmp: false,
    torrentPort: 0,
  } as never);
  try {
    useFairThrottles(client);
    const groups = (client as unknown as { throttleGroups: { up: { bucket: unknown }; down: { bucket: unknown } } }).throttleGroups;
    assert.ok(groups.up.bucket instanceof FairTokenBucket);
    assert.ok(groups.down.bucket instanceof FairTokenBucket);
    (client as unknown as { throttleUpload(rate: number): void }).throttleUpload(65536);
    const up = groups.up.bucket as FairTokenBucket;
    assert.equal(up.tokensPerInterval, 65536);
    assert.equal(up.bucketSize, 65536);
  } finally {
    await new Promise<void>((r) => client.destroy(() => r()));
  }
});
