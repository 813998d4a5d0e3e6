// Debian's chromium driven by playwright-core (never a downloaded browser), for the browser
// reader's tests, screenshot and benchmark. WebRTC between tabs and the sidecar on 127.0.0.1 needs
// loopback ICE candidates, which Chromium leaves out unless asked, and real addresses instead of
// mDNS names (no mDNS responder here).
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/** What the page exposes as window.nostrBt (scripts/reader/browser/main.ts), as far as tests read it. */
export interface PageState {
  phase: string;
  progress: {
    fromWebSeed: number;
    fromPeers: number;
    uploaded: number;
    rejected: { reason: string; detail: string }[];
    bundles: { state: string; problem?: string }[];
  } | null;
  result: { events: { id: string; kind: number; created_at: number; content: string }[]; pointerSeq: number; verifier: string } | null;
  error: string | null;
}

// The functions given to page.evaluate run in the page; the test program has no DOM types.
// `any` is the honest type for the untyped library internals this file patches or drives (biome.json turns noExplicitAny off here).
declare const window: any;
declare const document: any;
type HTMLElement = any;

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  // The tests run as root in a container, where Chromium's sandbox cannot start.
  '--no-sandbox',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--force-webrtc-ip-handling-policy=default',
  // Nothing but the gateway on loopback: no component updates, sync, or field trials.
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-dev-shm-usage',
  // Nothing is drawn that a test looks at but screenshots, which software rendering makes.
  '--disable-gpu',
];

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
}

/** Waits until the page's read ends (done, warning or error); returns its state. */
export async function readDone(page: Page, timeoutMs = 180_000): Promise<PageState & { dom: DomView }> {
  await page.waitForFunction(
    () => {
      const s = (window as unknown as { nostrBt?: PageState }).nostrBt;
      return !!s && (s.phase === 'done' || s.phase === 'error' || (s.phase === 'idle' && s.error !== null));
    },
    undefined,
    { timeout: timeoutMs, polling: 250 },
  );
  return page.evaluate(() => {
    const s = (window as unknown as { nostrBt: PageState }).nostrBt;
    const q = (sel: string) => [...document.querySelectorAll(sel)] as HTMLElement[];
    const bytes = (id: string) => Number(document.getElementById(id)?.dataset.bytes ?? 'NaN');
    return {
      ...s,
      dom: {
        state: document.getElementById('state')?.dataset.state ?? '',
        stateText: document.getElementById('state')?.textContent ?? '',
        eventIds: q('#events li[data-id]').map((e: HTMLElement) => e.dataset.id!),
        contents: q('#events li .content').map((e: HTMLElement) => e.textContent ?? ''),
        rejected: q('#rejected li').map((e: HTMLElement) => ({ reason: e.dataset.reason!, text: e.textContent ?? '' })),
        fromWebSeed: bytes('bytes-webseed'),
        fromPeers: bytes('bytes-peers'),
        uploaded: bytes('bytes-uploaded'),
        images: q('#events img[data-sha256], #events .noimg').map((e: HTMLElement) => ({
          sha256: e.dataset.sha256!,
          shown: e.tagName === 'IMG',
        })),
      },
    };
  });
}

export interface DomView {
  state: string;
  stateText: string;
  eventIds: string[];
  contents: string[];
  rejected: { reason: string; text: string }[];
  fromWebSeed: number;
  fromPeers: number;
  uploaded: number;
  images: { sha256: string; shown: boolean }[];
}

/** The page's byte counters now (a tab keeps seeding after its read). */
export function counters(page: Page): Promise<{ fromWebSeed: number; fromPeers: number; uploaded: number }> {
  return page.evaluate(() => {
    const p = (window as unknown as { nostrBt: PageState }).nostrBt.progress;
    return { fromWebSeed: p?.fromWebSeed ?? 0, fromPeers: p?.fromPeers ?? 0, uploaded: p?.uploaded ?? 0 };
  });
}
