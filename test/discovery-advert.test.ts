// `nostr-bt advertise`: the bridge's kind-30078 advertisement, signed by the operator's Nostr key
// from its key file, published to a real relay (@nostr-relay/core) over its WebSocket and read
// back: a valid Nostr event whose bridge-proof verifies for that author and no other, naming the
// bridge key `nostr-bt key` prints. Missing keys and relays are refused with a clear message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getPublicKey } from 'nostr-tools/pure';
import { queryRelay } from '../scripts/reader/relay-source.js';
import { ADVERT_D, ADVERT_KIND, readAdvert } from '../sidecar/formats/bridge-advert.js';
import { hasValidSignature, type NostrEvent } from '../sidecar/formats/nostr-event.js';
import { initSignatureCheck } from '../scripts/reader/verify-events.js';
import { makeWorkspace } from './testkit/sidecar-process.js';
import { runCli } from './testkit/reader-rig.js';
import { startTestRelay } from './testkit/nostr-relay.js';

test('advertise: a signed kind-30078 event with the bridge key and a proof, published through the relay and read back', {
  timeout: 60_000,
}, async () => {
  await initSignatureCheck();
  const relay = await startTestRelay();
  const secret = randomBytes(32);
  const ws = makeWorkspace({ bridge: { nostrKeyFile: 'OVERRIDE' }, gateway: { publicUrl: 'https://archive.example.org' } });
  const keyFile = join(ws.dir, 'operator.nsec');
  writeFileSync(keyFile, secret.toString('hex') + '\n', { mode: 0o600 });
  // The config names the key file by path; the secret itself is never in the config text.
  writeFileSync(ws.configPath, (await import('node:fs')).readFileSync(ws.configPath, 'utf8').replace('OVERRIDE', keyFile));
  try {
    const key = await runCli(['--config', ws.configPath, 'key']);
    assert.equal(key.code, 0, key.stderr);
    const bridgeKey = (JSON.parse(key.stdout) as { publicKey: string }).publicKey;
    const r = await runCli(['--config', ws.configPath, 'advertise', '--relay', relay.url]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { published: string; bridge: string; pubkey: string };
    assert.equal(out.bridge, bridgeKey);
    assert.equal(out.pubkey, getPublicKey(secret));
    const got = await queryRelay(relay.url, { kinds: [ADVERT_KIND], '#d': [ADVERT_D] }, { timeoutMs: 10_000 });
    assert.equal(got.events.length, 1);
    const e = got.events[0]! as NostrEvent;
    assert.equal(e.id, out.published);
    assert.ok(hasValidSignature(e), 'a valid Nostr signature');
    const a = readAdvert(e);
    assert.ok(a.ok, JSON.stringify(a));
    assert.equal(a.fields.bridgeKey, bridgeKey);
    assert.equal(a.fields.gateway, 'https://archive.example.org');
    assert.equal(a.fields.relay, relay.url);
    // The proof binds the bridge key to this author: copied into another author's event it fails.
    const other = readAdvert({ ...e, pubkey: getPublicKey(randomBytes(32)) });
    assert.deepEqual(other, { ok: false, reason: 'bridge-proof does not verify for this author' });
    assert.ok(!readAdvert({ ...e, tags: e.tags.map((t) => (t[0] === 'bridge' ? ['bridge', randomBytes(32).toString('hex')] : t)) }).ok);
    const printed = await runCli(['--config', ws.configPath, 'advertise', '--print']);
    assert.equal(printed.code, 0, printed.stderr);
    assert.ok(readAdvert(JSON.parse(printed.stdout) as NostrEvent).ok);
    assert.ok(
      !printed.stdout.includes(secret.toString('hex')) && !r.stdout.includes(secret.toString('hex')),
      'the secret is never printed',
    );

    // Refusals: no key, no relay, a relay that is not there.
    const bare = makeWorkspace();
    try {
      const noKey = await runCli(['--config', bare.configPath, 'advertise', '--relay', relay.url]);
      assert.equal(noKey.code, 2);
      assert.match(noKey.stderr, /no Nostr key: set bridge\.nostrKeyFile or give --nostr-key-file/);
    } finally {
      bare.cleanup();
    }
    const noRelay = await runCli(['--config', ws.configPath, 'advertise']);
    assert.equal(noRelay.code, 2);
    assert.match(noRelay.stderr, /no relay/);
    const gone = await runCli(['--config', ws.configPath, 'advertise', '--relay', 'ws://127.0.0.1:1', '--timeout', '3']);
    assert.equal(gone.code, 1, gone.stderr);
  } finally {
    await relay.stop();
    ws.cleanup();
  }
});
