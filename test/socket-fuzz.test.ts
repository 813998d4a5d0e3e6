// Hostile clients on the sidecar's ingest socket: fuzzed lines (random bytes, truncated JSON, deep
// nesting, wrong types, lines of MBs), clients that connect and never send, and a client that
// sends a huge line with no newline and stays. The sidecar stays up, counts and acknowledges every
// line once, stores exactly the well-formed events, keeps its memory bounded, and serves others.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { makeWorkspace, SidecarProcess } from './testkit/sidecar-process.js';
import { unsignedEvent, pluginLine, pubkeyN } from './testkit/events.js';
import { ingestClient, sendLines } from './testkit/ingest-client.js';
import { hostileLines } from './testkit/hostile-lines.js';
import { rssKb } from './testkit/hostile-peer.js';

test('socket fuzz: 20k hostile lines, idle clients and an endless line; every line acknowledged once, only valid events stored, memory bounded', {
  timeout: 120_000,
}, async () => {
  const MAX_LINE = 256 * 1024;
  const ws = makeWorkspace({ ingest: { maxLineBytes: MAX_LINE }, dht: { enabled: false } });
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  const idle: Socket[] = [];
  try {
    await sidecar.start();
    const pid = sidecar.proc!.pid!;
    for (let i = 0; i < 50; i++) idle.push((await ingestClient(sidecar.socketPath)).socket);
    // A client that sends more than a line may hold, without a newline, and never finishes it.
    const endless = await ingestClient(sidecar.socketPath);
    await endless.send(['x'.repeat(MAX_LINE + 100_000)]); // send() adds the newline...
    endless.close();
    const open = await ingestClient(sidecar.socketPath);
    open.socket.write('y'.repeat(MAX_LINE * 2)); // ... this one never gets one
    idle.push(open.socket);

    const valid = new Set<string>();
    const fuzz = await ingestClient(sidecar.socketPath);
    let sent = 0;
    let peakRss = 0;
    const first = pluginLine(unsignedEvent(pubkeyN(500), { kind: 1, created_at: 1_700_000_000, content: 'first' }));
    valid.add((JSON.parse(first) as { event: { id: string } }).event.id);
    await fuzz.send([first]);
    sent++;
    const batch: string[] = [];
    let empty = 0;
    for (const line of hostileLines(20_000, 7, { hugeEvery: 5000, onValid: (id) => valid.add(id) })) {
      batch.push(line);
      if (line.length === 0) empty++;
      if (batch.length === 500) {
        await fuzz.send(batch.splice(0));
        peakRss = Math.max(peakRss, rssKb(pid));
      }
      sent++;
    }
    await fuzz.send(batch.splice(0));
    assert.ok(await fuzz.waitAcked(sent, 60_000), `every line acknowledged (${fuzz.acked()} of ${sent})`);
    assert.equal(fuzz.acked(), sent, 'acknowledged once each');
    fuzz.close();

    const s = await sidecar.waitFor((st) => st.events.stored === valid.size, 20_000);
    assert.equal(s.sidecar, 'up');
    const endlessLines = 2; // the closed oversized line and the open one, each counted once
    assert.equal(s.events.received, sent - empty + endlessLines, 'every non-empty line counted once (empty lines are only acknowledged)');
    assert.equal(s.events.indexed, valid.size, 'exactly the well-formed events are stored');
    assert.ok((s.invalid['line-too-long'] ?? 0) >= endlessLines, `oversized lines refused (${JSON.stringify(s.invalid)})`);
    peakRss = Math.max(peakRss, rssKb(pid));
    assert.ok(peakRss < 700 * 1024, `sidecar memory bounded (peak ${Math.round(peakRss / 1024)} MB)`);

    // Others are still served while the idle and endless clients hang on.
    const more = Array.from({ length: 10 }, (_, i) =>
      pluginLine(unsignedEvent(pubkeyN(600 + i), { kind: 1, created_at: 1_700_000_100 + i, content: `later ${i}` })),
    );
    assert.equal(await sendLines(sidecar.socketPath, more), 10);
    await sidecar.waitFor((st) => st.events.stored === valid.size + 10);
  } finally {
    for (const s of idle) s.destroy();
    await sidecar.kill9();
    ws.cleanup();
  }
});
