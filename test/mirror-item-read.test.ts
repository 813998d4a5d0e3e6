// A mirror's read of an origin's item (sidecar/mirror/item-read.ts) on 21 real bittorrent-dht
// nodes on 127.0.0.1: the newest seq is found though most nodes still hold an older copy, the
// older copies met are replaced (read-repair), and a read that knows what to expect ends once two
// nodes agree, with fewer queries than a full walk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type DHT from 'bittorrent-dht';
import { authorPages, authorSalt, signedBytes, targetOf } from '../sidecar/formats/pointer-item.js';
import { ItemPutter } from '../sidecar/dht/put.js';
import { rpcOf } from '../sidecar/dht/lookup.js';
import { readAndRepair } from '../sidecar/mirror/item-read.js';
import { startLocalDht } from './testkit/local-dht.js';
import { testBridgeKey } from './testkit/hostile-bridge.js';
import { pubkeyN } from './testkit/events.js';
import { sleep } from './testkit/sidecar-process.js';

type Stored = { _values: { get(k: string): { seq?: number } | undefined } };

test('mirror item read: newest seq found among older copies, older copies repaired, an expected answer ends the lookup early', {
  timeout: 120_000,
}, async () => {
  const dht = await startLocalDht(21);
  try {
    const [origin, ...rest] = dht.nodes;
    const reader = rest.pop()!;
    const bridge = testBridgeKey();
    const author = pubkeyN(7);
    const salt = authorSalt(author, 0);
    const target = targetOf(bridge.key.publicKey, salt);
    const sign = (seq: number, ihs: string[]) => {
      const v = authorPages(ihs)[0]!;
      return { k: bridge.key.publicKey, salt, seq, v, sig: bridge.key.sign(signedBytes(salt, seq, v)) };
    };
    const old = sign(1, ['1'.repeat(40)]);
    const out = await new ItemPutter(origin!).put(old);
    assert.ok(out.stored >= 4, `seq 1 stored on ${out.stored} nodes`);
    const seqOn = (d: DHT) => (d as unknown as Stored)._values.get(target.toString('hex'))?.seq;
    const holders = dht.nodes.filter((d) => seqOn(d) === 1);
    // seq 2 reaches two of them only (a later put that missed nodes holding the earlier one).
    const newer = sign(2, ['2'.repeat(40), '1'.repeat(40)]);
    const rpc = rpcOf(origin!);
    for (const d of holders.slice(0, 2)) {
      const node = { host: '127.0.0.1', port: d.address().port };
      const got = await new Promise<{ r?: { token?: Uint8Array } }>((res, rej) =>
        rpc.query(node as never, { q: 'get', a: { id: rpc.id, target } }, (e, r) => (e ? rej(e) : res(r as never))),
      );
      await new Promise<void>((res, rej) =>
        rpc.query(
          node as never,
          { q: 'put', a: { id: rpc.id, token: got.r!.token, k: newer.k, salt, seq: 2, sig: newer.sig, v: newer.v } },
          (e) => (e ? rej(e) : res()),
        ),
      );
    }
    assert.equal(dht.nodes.filter((d) => seqOn(d) === 2).length, 2);

    const full = await readAndRepair(reader, bridge.key.publicKey, salt, { timeoutMs: 30_000 });
    assert.ok(typeof full.item !== 'string', `read: ${String(full.item)}`);
    assert.equal(full.item.seq, 2, 'the newest seq, though most nodes hold seq 1');
    assert.ok(full.repaired >= 1, `${full.repaired} older copies repaired`);
    const deadline = Date.now() + 10_000;
    while (dht.nodes.filter((d) => seqOn(d) === 2).length <= 2 && Date.now() < deadline) await sleep(100);
    assert.ok(dht.nodes.filter((d) => seqOn(d) === 2).length > 2, 'older copies replaced by seq 2');
    assert.equal(dht.nodes.filter((d) => seqOn(d) === 1).length + dht.nodes.filter((d) => seqOn(d) === 2).length >= holders.length, true);

    // Expecting seq 2: two agreeing answers end it.
    const quick = await readAndRepair(reader, bridge.key.publicKey, salt, { timeoutMs: 30_000, expected: (it) => it.seq === 2 });
    assert.ok(typeof quick.item !== 'string');
    assert.equal(quick.item.seq, 2);
    assert.ok(
      quick.queries < full.queries && quick.queries <= 10,
      `expected read: ${quick.queries} answers read, full walk ${full.queries}`,
    );
  } finally {
    await dht.stop();
  }
});
