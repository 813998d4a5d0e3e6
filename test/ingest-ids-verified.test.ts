// Lines from strfry (a plugin connection: no hello) are judged without hashing each event's
// serialization again, since strfry verified the id and signature before calling its plugin
// (docs/protocol.md §1-2); every other producer's lines keep the id check. Shown with a line whose
// content was changed after signing: only the hello connection (a backfill, even a trusted one)
// finds it out; the judged output of an untouched line is byte for byte the same either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../sidecar/common/config.js';
import { EVENT, ID_VERIFIED, INVALID, VERIFY_ID, VERIFY_SIGNATURE, judgeRequest, packLines, verifyFlags } from '../sidecar/judge/wire.js';
import type { PolicyConfig } from '../sidecar/policy/content-policy.js';
import { makeWorkspace, SidecarProcess } from './testkit/sidecar-process.js';
import { ingestClient } from './testkit/ingest-client.js';
import { pluginLine, pubkeyN, unsignedEvent } from './testkit/events.js';

const NOW = 1_800_000_000;
const policy: PolicyConfig = { ...loadConfig({ env: {}, cwd: '/nonexistent' }).policy, maxEventBytes: 64 * 1024, relayUrl: '' };

const good = unsignedEvent(pubkeyN(1), { kind: 1, created_at: 1_700_000_000, tags: [['t', 'x']], content: 'as signed' });
/** The same id over other content: what a line whose bytes changed on the way looks like. */
const tampered = { ...unsignedEvent(pubkeyN(2), { kind: 1, created_at: 1_700_000_001, content: 'as signed' }), content: 'changed' };

test('verifyFlags: a boolean while every line has the same sig/id check, per-line flags otherwise', () => {
  assert.equal(verifyFlags([]), false);
  assert.equal(verifyFlags([VERIFY_ID, VERIFY_ID]), false);
  assert.equal(verifyFlags([VERIFY_SIGNATURE]), true);
  assert.deepEqual(verifyFlags([ID_VERIFIED, ID_VERIFIED]), Uint8Array.of(ID_VERIFIED, ID_VERIFIED));
  assert.deepEqual(verifyFlags([VERIFY_ID, VERIFY_SIGNATURE]), Uint8Array.of(VERIFY_ID, VERIFY_SIGNATURE));
});

test('judge: ID_VERIFIED lines skip only the id hash; the same line checked gives the same bytes', () => {
  const lines = [pluginLine(good), pluginLine(tampered), pluginLine(good), pluginLine(tampered)];
  const r = judgeRequest(
    { seq: 0, lines: packLines(lines), verify: Uint8Array.of(ID_VERIFIED, ID_VERIFIED, VERIFY_ID, VERIFY_ID), nowSec: NOW },
    policy,
  );
  assert.deepEqual([...r.status], [EVENT, EVENT, EVENT, INVALID]);
  assert.deepEqual(r.reasons, ['bad-id']);
  const json = (k: number) => Buffer.from(r.lines.subarray(k === 0 ? 0 : r.lineEnds[k - 1], r.lineEnds[k])).toString('utf8');
  assert.equal(json(0), json(2), 'the same canonical line either way');
  assert.equal(Buffer.from(r.keyBytes.subarray(0, 64)).toString('hex'), good.id + good.pubkey);
  assert.equal(Buffer.from(r.keyBytes.subarray(128, 192)).toString('hex'), good.id + good.pubkey);
  assert.equal(Buffer.from(r.keyBytes.subarray(64, 128)).toString('hex'), tampered.id + tampered.pubkey, 'the id as strfry gave it');
  // Structure is still checked in full: a line that is not an event stays invalid.
  const bad = judgeRequest({ seq: 1, lines: packLines(['{"event":{"id":"x"}}']), verify: Uint8Array.of(ID_VERIFIED), nowSec: NOW }, policy);
  assert.deepEqual([...bad.status], [INVALID]);
});

test('socket: the plugin connection takes strfry-verified ids as they are; a hello connection (trusted backfill) checks them', {
  timeout: 60_000,
}, async () => {
  const ws = makeWorkspace({ dht: { enabled: false } });
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  try {
    await sidecar.start();
    const plugin = await ingestClient(sidecar.socketPath);
    await plugin.send([pluginLine(good), pluginLine(tampered)]);
    assert.ok(await plugin.waitAcked(2), 'plugin lines acknowledged');
    plugin.close();
    let s = await sidecar.waitFor((st) => st.events.indexed === 2);
    assert.equal(s.invalid['bad-id'] ?? 0, 0);

    const other = { ...unsignedEvent(pubkeyN(3), { kind: 1, created_at: 1_700_000_002, content: 'as signed' }), content: 'changed' };
    const backfill = await ingestClient(sidecar.socketPath);
    await backfill.send([JSON.stringify({ hello: 'backfill', trusted: true }), pluginLine(other)]);
    assert.ok(await backfill.waitAcked(2), 'hello and line acknowledged');
    backfill.close();
    s = await sidecar.waitFor((st) => (st.invalid['bad-id'] ?? 0) === 1);
    assert.equal(s.events.indexed, 2, 'the hello connection’s changed line is not indexed');
  } finally {
    await sidecar.kill9();
    ws.cleanup();
  }
});
