// Makes docs/browser-page.png: a sidecar on loopback archives a few signed events of one author,
// and Debian's chromium (playwright-core) reads them on the gateway's page.
//
//   npm run build && node dist/scripts/browser-screenshot.js [out.png]
import { join } from 'node:path';
import { launchChromium, readDone } from '../test/testkit/browser.js';
import { pluginLine, signer } from '../test/testkit/events.js';
import { sendLines } from '../test/testkit/ingest-client.js';
import { startGatewayRig } from '../test/testkit/gateway-rig.js';
import { DIST } from '../test/testkit/sidecar-process.js';

const out = process.argv[2] ?? join(DIST, '..', 'docs', 'browser-page.png');
const rig = await startGatewayRig({}, { dhtNodes: 4 });
try {
  const a = await signer();
  const t = 1_765_000_000;
  const events = [
    a.sign({
      kind: 0,
      created_at: t,
      content: JSON.stringify({ name: 'alice', about: 'writes about relays and archives', nip05: 'alice@example.org' }),
    }),
    a.sign({
      kind: 1,
      created_at: t + 3600,
      content: 'Good morning! Testing the archive of our relay: every note here was read from a BitTorrent bundle in this tab.',
    }),
    a.sign({
      kind: 1,
      created_at: t + 7200,
      content: 'Deleted notes stay deleted, even in old bundles: the reader honours NIP-09 from the events themselves.',
    }),
    a.sign({ kind: 7, created_at: t + 7300, content: '+', tags: [['e', 'f'.repeat(64)]] }),
    a.sign({
      kind: 1,
      created_at: t + 86_400,
      content:
        "The gateway is trusted for nothing: the pointer carries the bridge's ed25519 signature and every event its own Schnorr signature.",
    }),
    a.sign({
      kind: 30023,
      created_at: t + 90_000,
      content: "# Archives over BitTorrent\n\nA relay's history, seeded as torrents…",
      tags: [
        ['d', 'archives'],
        ['title', 'Archives over BitTorrent'],
      ],
    }),
  ];
  await sendLines(
    rig.sidecar.socketPath,
    events.map((e) => pluginLine(e)),
    60_000,
  );
  await rig.sidecar.waitFor(
    (s) =>
      s.bundles?.pendingEvents === 0 && (s.bundles?.built ?? 0) > 0 && s.pointers?.dirtyAuthors === 0 && (s.pointers?.published ?? 0) > 0,
    90_000,
  );
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 1100 }, deviceScaleFactor: 1 });
    await page.goto(`${rig.base}/`);
    await page.fill('#author', (await import('nostr-tools')).nip19.npubEncode(a.pubkey));
    await page.click('#go');
    const r = await readDone(page);
    if (r.dom.state !== 'done') throw new Error(`the page ended ${r.dom.state}: ${r.dom.stateText}`);
    await page.screenshot({ path: out, fullPage: true });
    process.stdout.write(`${out}: ${r.dom.eventIds.length} events\n`);
  } finally {
    await browser.close();
  }
} finally {
  await rig.stop();
}
