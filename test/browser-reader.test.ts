// The browser reader in a real browser (Debian's chromium, playwright-core) against a real sidecar
// on loopback: the page served at `/` shows exactly the author's archived events (deleted and
// superseded ones absent), a second tab gets the bundle from the first over WebRTC, and a hostile
// gateway's tampered events and forged pointer are caught and reported by the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { nip19 } from 'nostr-tools';
import type { Browser } from 'playwright-core';
import { canonicalJson, type NostrEvent } from '../sidecar/formats/nostr-event.js';
import { pluginLine, signer } from './testkit/events.js';
import { sendLines } from './testkit/ingest-client.js';
import { startGatewayRig, type GatewayRig } from './testkit/gateway-rig.js';
import { chromiumAvailable, counters, launchChromium, readDone } from './testkit/browser.js';
import { startHostileGateway, tampered } from './testkit/hostile-gateway.js';
import { mediaServer, type MediaServer } from './testkit/media-server.js';

const skip = chromiumAvailable() ? false : 'no /usr/bin/chromium (apt-get install chromium)';
const T0 = 1_700_000_000;

let rig: GatewayRig;
let author: string;
let expected: NostrEvent[];
const imageSha = randomBytes(32).toString('hex');
/** A real 1×1 PNG the bridge archives from a loopback Blossom stand-in (the present case). */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
let origin: MediaServer;
/** What the page functions below use of the DOM (this file is compiled without the DOM lib). */
type PageDom = { document: { querySelector(s: string): { complete: boolean; naturalWidth: number; src: string } | null } };
let pngSha: string;

function newestFirst(a: NostrEvent, b: NostrEvent): number {
  return b.created_at - a.created_at || (a.id < b.id ? -1 : 1);
}

before(async () => {
  if (skip) return;
  // One WebRTC peer per bundle for the bridge: the first tab takes it, so the second can only
  // get the bundle from the first.
  origin = await mediaServer();
  pngSha = origin.add(PNG, 'image/png');
  rig = await startGatewayRig({ webrtcMaxPeersPerBundle: 1 }, { dhtNodes: 4, media: { enabled: true, allowLoopback: true } });
  const a = await signer();
  const other = await signer();
  author = a.pubkey;
  const notes = Array.from({ length: 6 }, (_, i) =>
    a.sign({ kind: 1, created_at: T0 + 100 + i, content: `note ${i}: hello from the archive ✓ <b>not html</b>` }),
  );
  const withImage = a.sign({
    kind: 1,
    created_at: T0 + 200,
    content: 'a picture',
    tags: [['imeta', `url https://blossom.example/${imageSha}.png`, `x ${imageSha}`, 'm image/png']],
  });
  const withArchivedImage = a.sign({
    kind: 1,
    created_at: T0 + 201,
    content: 'an archived picture',
    tags: [['imeta', `url ${origin.url(pngSha, '.png')}`, `x ${pngSha}`, 'm image/png']],
  });
  const oldProfile = a.sign({ kind: 0, created_at: T0 + 1, content: JSON.stringify({ name: 'old name' }) });
  const profile = a.sign({ kind: 0, created_at: T0 + 50, content: JSON.stringify({ name: 'alice', about: 'reads archives' }) });
  const doomed = a.sign({ kind: 1, created_at: T0 + 103, content: 'this note is deleted' });
  const deletion = a.sign({ kind: 5, created_at: T0 + 300, content: 'oops', tags: [['e', doomed.id]] });
  const others = Array.from({ length: 3 }, (_, i) => other.sign({ kind: 1, created_at: T0 + 150 + i, content: `someone else ${i}` }));
  const all = [oldProfile, profile, ...notes, doomed, withImage, withArchivedImage, deletion, ...others];
  expected = [profile, ...notes, withImage, withArchivedImage, deletion].sort(newestFirst);
  const acked = await sendLines(
    rig.sidecar.socketPath,
    all.map((e) => pluginLine(e)),
    60_000,
  );
  assert.equal(acked, all.length);
  await rig.sidecar.waitFor(
    (s) =>
      s.bundles?.pendingEvents === 0 && (s.bundles?.built ?? 0) > 0 && s.pointers?.dirtyAuthors === 0 && (s.pointers?.published ?? 0) >= 2,
    90_000,
  );
  await rig.sidecar.waitFor((s) => (s.media?.seeded ?? 0) >= 1, 60_000);
});

after(async () => {
  await rig?.stop();
  await origin?.close();
});

/** A browser per test: Chromium starts helper processes as it goes, and the leak check wants each test to end them. */
async function withBrowser(t: { after: (fn: () => Promise<void>) => void }): Promise<Browser> {
  const browser = await launchChromium();
  t.after(() => browser.close());
  return browser;
}

test('two tabs: the second gets the bundle from the first over WebRTC', { skip }, async (t) => {
  const browser = await withBrowser(t);
  // Two contexts: two readers sharing no storage.
  const ctx = await browser.newContext();
  const ctx2 = await browser.newContext();
  try {
    const first = await ctx.newPage();
    await first.goto(`${rig.base}/?author=${author}&webseed=never`);
    const a = await readDone(first);
    assert.equal(a.dom.state, 'done', a.dom.stateText);
    assert.deepEqual(
      a.dom.eventIds,
      expected.map((e) => e.id),
    );
    assert.ok(a.dom.fromPeers > 0 && a.dom.fromWebSeed === 0, `first tab: ${JSON.stringify(a.dom)}`);

    const second = await ctx2.newPage();
    await second.goto(`${rig.base}/?author=${author}&webseed=never`);
    const b = await readDone(second);
    assert.equal(b.dom.state, 'done', b.dom.stateText);
    assert.deepEqual(
      b.dom.eventIds,
      expected.map((e) => e.id),
    );
    assert.ok(b.dom.fromPeers > 0, `second tab got ${b.dom.fromPeers} bytes from peers`);
    assert.equal(b.dom.fromWebSeed, 0);
    // The first tab is a browser: what it uploaded (piece bytes on WebRTC wires) went to the second.
    let up = 0;
    for (let i = 0; i < 40 && up === 0; i++) {
      up = (await counters(first)).uploaded;
      if (up === 0) await first.waitForTimeout(250);
    }
    assert.ok(up > 0, 'the first tab uploaded to the second');
    const st = await rig.sidecar.status();
    assert.ok((st.seeding?.webrtcPeers ?? 0) <= 1, 'the bridge held at most one WebRTC peer on the bundle');
  } finally {
    await ctx2.close();
    await ctx.close();
  }
});

test("the page shows exactly the author's archived events, newest first, deleted and superseded ones absent", { skip }, async (t) => {
  const browser = await withBrowser(t);
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(`${rig.base}/?webseed=now`);
    await page.fill('#author', nip19.npubEncode(author));
    await page.click('#go');
    const r = await readDone(page);
    assert.equal(r.dom.state, 'done', r.dom.stateText);
    assert.deepEqual(
      r.dom.eventIds,
      expected.map((e) => e.id),
    );
    assert.equal(r.result?.verifier, 'WebCrypto Ed25519');
    assert.deepEqual(r.dom.rejected, []);
    assert.ok(r.dom.fromWebSeed > 0, `bytes from the web seed: ${r.dom.fromWebSeed}`);
    // Content is text, never markup.
    assert.ok(r.dom.contents.some((c) => c.includes('<b>not html</b>')));
    assert.equal(await page.locator('#events b').count(), 0);
    // The image the archive has not got (no Blossom endpoint serves it) is reported, not broken.
    await page.waitForSelector(`#events .noimg[data-sha256="${imageSha}"]`, { timeout: 30_000 });
    // The one it has is shown, from the bridge's Blossom endpoint (the origin sends nothing more),
    // and its bytes hash to the sha256 the event states.
    const originSent = origin.blobBytesSent;
    await page.waitForFunction(
      (sha) => {
        const img = (globalThis as unknown as PageDom).document.querySelector(`#events img[data-sha256="${sha}"]`);
        return img !== null && img.complete && img.naturalWidth > 0;
      },
      pngSha,
      { timeout: 30_000 },
    );
    const shown = await page.evaluate(async (sha) => {
      const img = (globalThis as unknown as PageDom).document.querySelector(`#events img[data-sha256="${sha}"]`)!;
      const bytes = await (await fetch(img.src)).arrayBuffer();
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
      return { src: img.src, width: img.naturalWidth, sha256: [...digest].map((b) => b.toString(16).padStart(2, '0')).join('') };
    }, pngSha);
    assert.equal(shown.sha256, pngSha);
    assert.equal(shown.src, `${rig.base}/${pngSha}`);
    assert.equal(shown.width, 1);
    assert.equal(origin.blobBytesSent, originSent, 'the image came from the bridge, not the origin');
    assert.equal(await page.locator(`#events .noimg[data-sha256="${pngSha}"]`).count(), 0);
    const headers = (await page.request.get(`${rig.base}/`)).headers();
    assert.match(headers['content-security-policy'] ?? '', /script-src 'self'/);
  } finally {
    await ctx.close();
  }
});

test('a hostile gateway: tampered events are rejected with their reason, a forged pointer is refused', { skip }, async (t) => {
  const a = await signer();
  const c = await signer();
  const root = mkdtempSync(join(tmpdir(), 'nostr-bt-hostile-gw-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const good = [1, 2, 3].map((i) => a.sign({ kind: 1, created_at: T0 + i * 10, content: `genuine ${i}` }));
  const altered = a.sign({ kind: 1, created_at: T0 + 15, content: 'what the author said' });
  const resigned = a.sign({ kind: 1, created_at: T0 + 25, content: 'a signature from elsewhere' });
  const stranger = c.sign({ kind: 1, created_at: T0 + 26, content: 'not by this author' });
  const lines = [
    { text: canonicalJson(good[0]!), createdAt: T0 + 10 },
    { text: tampered(altered, 'what the gateway says they said'), createdAt: T0 + 15 },
    { text: canonicalJson(good[1]!), createdAt: T0 + 20 },
    { text: canonicalJson({ ...resigned, sig: good[2]!.sig }), createdAt: T0 + 25 },
    { text: canonicalJson(stranger), createdAt: T0 + 26 },
    { text: 'this is not json', createdAt: T0 + 27 },
    { text: canonicalJson(good[2]!), createdAt: T0 + 30 },
  ];
  const forgedAuthor = (await signer()).pubkey;
  const gw = await startHostileGateway({ author: a.pubkey, lines, forgedAuthor, root });
  t.after(() => gw.close());
  const browser = await withBrowser(t);
  const ctx = await browser.newContext();

  const page = await ctx.newPage();
  await page.goto(`${gw.base}/?author=${a.pubkey}&webseed=now`);
  const r = await readDone(page);
  assert.equal(r.dom.state, 'warning', r.dom.stateText);
  assert.deepEqual(
    r.progress?.bundles.map((b) => b.problem ?? b.state),
    ['verified'],
  );
  assert.deepEqual(
    r.dom.eventIds,
    [...good].sort(newestFirst).map((e) => e.id),
    'only the genuine events are shown',
  );
  assert.deepEqual(r.dom.rejected.map((x) => x.reason).sort(), ['bad-id', 'bad-sig', 'malformed', 'wrong-author']);
  assert.ok(r.dom.rejected.find((x) => x.reason === 'bad-id')!.text.includes('what the gateway says'), 'the rejected line is shown');
  assert.match(r.dom.stateText, /4 rejected/);

  const forged = await ctx.newPage();
  await forged.goto(`${gw.base}/?author=${nip19.npubEncode(forgedAuthor)}`);
  const f = await readDone(forged);
  assert.equal(f.dom.state, 'error');
  assert.match(f.dom.stateText, /signature does not verify/);
  assert.deepEqual(f.dom.eventIds, []);
});
