// Browser offload (issue 22 §4): what browser tabs sharing over WebRTC save the bridge.
//
//   A real sidecar (child process, gateway and WebSocket tracker on loopback, a local DHT) archives
//   one author's 10 MB (2 MB in --quick) of signed events. Then 10 headless Chromium tabs (--n),
//   each in its own browser context (no shared storage), open the gateway's page at once and read
//   that author: the pointer, the .torrent, the author's file over WebRTC from the bridge and
//   from each other (the web seed only if peers stall, the page's default), every event verified.
//   Figure: bytes the bridge sent (its seeder's WebRTC upload, from /status, plus what the tabs
//   got from the web seed) ÷ bytes delivered (the author's file × tabs). Goal ≤ 40 %.
//   Baseline in the same run: the same tabs reading with `?webrtc=0` (web seed alone), where the
//   bridge sends every byte by construction. First, one tab alone, from the web seed alone and
//   over WebRTC: sharing between tabs must not cost a lone reader time. Tabs start at once,
//   unstaggered (the hardest case: no tab has a piece to give when the others arrive).
// Loopback only. Prints figures; never asserts timings.
//
//   node dist/bench/browser-offload-bench.js [--quick] [--n=TABS]
import type { Browser, BrowserContext } from 'playwright-core';
import { chromiumAvailable, counters, launchChromium, readDone } from '../test/testkit/browser.js';
import { pluginLine, signer } from '../test/testkit/events.js';
import { sendLines } from '../test/testkit/ingest-client.js';
import { startGatewayRig, type GatewayRig } from '../test/testkit/gateway-rig.js';
import { figure, fmt, log, onCleanup, parseArgs, printFigures, runMain, stopOnce } from './common.js';

const GOAL = 0.4;
const EVENT_CONTENT = 8 * 1024;

interface Round {
  delivered: number;
  bridgeSent: number;
  fromWebSeed: number;
  fromPeers: number;
  bridgeWebRtc: number;
  seconds: number;
  events: number[];
}

async function round(browser: Browser, rig: GatewayRig, author: string, tabs: number, query: string): Promise<Round> {
  // The last round's tabs are closed, but the bridge sees their WebRTC peers go only when their
  // connections time out; until then they count against its per-bundle peer limit.
  await rig.sidecar.waitFor((s) => (s.seeding?.webrtcPeers ?? 0) === 0, 120_000);
  const before = (await rig.sidecar.status()).seeding?.uploaded ?? 0;
  const contexts: BrowserContext[] = [];
  const started = Date.now();
  try {
    const pages = [];
    for (let i = 0; i < tabs; i++) {
      const ctx = await browser.newContext();
      contexts.push(ctx);
      pages.push(await ctx.newPage());
    }
    // All tabs at once.
    await Promise.all(pages.map((p) => p.goto(`${rig.base}/?author=${author}&bundleTimeoutMs=900000&${query}`)));
    const results = await Promise.all(pages.map((p) => readDone(p, 1_000_000)));
    const seconds = (Date.now() - started) / 1000;
    for (const r of results)
      if (r.dom.state !== 'done')
        throw new Error(
          `a tab ended ${r.dom.state}: ${r.dom.stateText} (${r.progress?.bundles.map((b) => b.problem ?? b.state).join('; ')})`,
        );
    const now = await Promise.all(pages.map((p) => counters(p)));
    const fileBytes = results[0]!.progress!.bundles.reduce((n, b) => n + ((b as unknown as { fileBytes: number }).fileBytes ?? 0), 0);
    const after = (await rig.sidecar.status()).seeding?.uploaded ?? 0;
    const fromWebSeed = now.reduce((n, c) => n + c.fromWebSeed, 0);
    const fromPeers = now.reduce((n, c) => n + c.fromPeers, 0);
    return {
      delivered: fileBytes * tabs,
      bridgeWebRtc: after - before,
      bridgeSent: after - before + fromWebSeed,
      fromWebSeed,
      fromPeers,
      seconds,
      events: results.map((r) => r.dom.eventIds.length),
    };
  } finally {
    for (const c of contexts) await c.close();
  }
}

async function main(): Promise<void> {
  const args = parseArgs();
  if (!chromiumAvailable()) throw new Error('no /usr/bin/chromium (apt-get install chromium)');
  const tabs = args.n ?? 10;
  const totalBytes = (args.quick ? 2 : 10) * 1024 * 1024;
  const rig = await startGatewayRig(
    // Every tab is on 127.0.0.1: the per-address bounds are lifted for them.
    { webrtcMaxPeers: 50, maxConnectionsPerIp: 10_000, requestsPerSecondPerIp: 1_000_000, burstPerIp: 1_000_000 },
    { dhtNodes: 4 },
  );
  const stopRig = stopOnce(() => rig.stop());
  const a = await signer();
  const n = Math.ceil(totalBytes / (EVENT_CONTENT + 250));
  const filler = 'archive '.repeat(EVENT_CONTENT / 8);
  const lines = Array.from({ length: n }, (_, i) =>
    pluginLine(a.sign({ kind: 1, created_at: 1_700_000_000 + i, content: `${i} ${filler}` })),
  );
  if ((await sendLines(rig.sidecar.socketPath, lines, 120_000)) !== n) throw new Error('not every event acknowledged');
  await rig.sidecar.waitFor(
    (s) =>
      s.events.stored >= n &&
      s.bundles?.pendingEvents === 0 &&
      (s.bundles?.built ?? 0) > 0 &&
      s.pointers?.dirtyAuthors === 0 &&
      (s.pointers?.published ?? 0) > 0,
    120_000,
  );
  const browser = await launchChromium();
  const stopBrowser = stopOnce(() => browser.close());
  onCleanup(stopBrowser);
  onCleanup(stopRig);

  // One tab alone (the bridge its only peer): what rarest-first and dropping the web seed must not slow.
  const loneWebSeed = await round(browser, rig, a.pubkey, 1, 'webrtc=0&webseed=now');
  const lone = await round(browser, rig, a.pubkey, 1, 'webseed=auto');
  log(
    `one tab alone: ${fmt(lone.seconds, 1)} s over WebRTC (web seed ${fmt(lone.fromWebSeed / 1e6, 1)} MB), ${fmt(loneWebSeed.seconds, 1)} s from the web seed alone`,
  );
  log(`${tabs} tabs at once, one author, ${n} events (${fmt(totalBytes / 1024 / 1024, 1)} MB)`);
  const base = await round(browser, rig, a.pubkey, tabs, 'webrtc=0&webseed=now');
  log(
    `web seed only: bridge sent ${fmt(base.bridgeSent / 1e6, 1)} MB of ${fmt(base.delivered / 1e6, 1)} MB delivered in ${fmt(base.seconds, 1)} s`,
  );
  const p2p = await round(browser, rig, a.pubkey, tabs, 'webseed=auto');
  log(
    `WebRTC + web seed on stall: bridge sent ${fmt(p2p.bridgeSent / 1e6, 1)} MB (WebRTC ${fmt(p2p.bridgeWebRtc / 1e6, 1)}, web seed ${fmt(p2p.fromWebSeed / 1e6, 1)}) ` +
      `of ${fmt(p2p.delivered / 1e6, 1)} MB delivered in ${fmt(p2p.seconds, 1)} s; tabs got ${fmt(p2p.fromPeers / 1e6, 1)} MB from peers`,
  );
  const events = new Set([...base.events, ...p2p.events, ...lone.events, ...loneWebSeed.events]);
  if (events.size !== 1) throw new Error(`tabs showed different numbers of events: ${[...events].join(', ')}`);
  await stopBrowser();
  await stopRig();
  printFigures(
    'browser-offload',
    [
      figure(
        'bridge bytes / delivered, 10 tabs over WebRTC',
        p2p.bridgeSent / p2p.delivered,
        'ratio',
        base.bridgeSent / base.delivered,
        `≤ ${GOAL}`,
      ),
      figure('of which web seed', p2p.fromWebSeed / p2p.delivered, 'ratio'),
      figure('time for all tabs, WebRTC', p2p.seconds, 's', base.seconds),
      figure('time for one tab alone, WebRTC', lone.seconds, 's', loneWebSeed.seconds),
    ],
    { mode: args.quick ? 'quick' : 'full', tabs, bytes: totalBytes },
  );
}

runMain(main);
