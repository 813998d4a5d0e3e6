// The page the gateway serves at `/` (scripts/build-browser.ts bundles it): paste an author's npub
// or hex key, and it reads their archive from this gateway (archive.ts) and shows the verified
// events, newest first, with where the bytes came from and what was rejected and why.
// `?author=<key>` starts a read at once; `?webseed=auto|now|never` chooses when the web seed is
// used (auto: when WebRTC peers do not deliver for `stallMs`, default 3000); `?webrtc=0` reads
// from the web seed alone.
import { decode as nip19decode } from 'nostr-tools/nip19';
import type { NostrEvent } from '../../../sidecar/formats/nostr-event.js';
import { readArchive, uploadedBytes, type Progress, type ReadResult, type WebSeedMode } from './archive.js';
import { imagesOf } from './media.js';

interface WellKnown {
  bridge: { hex: string; z32: string };
  relay: string | null;
  counts: { authors: number; events: number; bundles: number };
  endpoints: { tracker?: string | null };
}

/** What the page exposes for scripts and tests (the DOM shows the same). */
export interface PageState {
  phase: 'idle' | Progress['phase'];
  progress: Progress | null;
  result: { events: NostrEvent[]; pointerSeq: number; verifier: string } | null;
  error: string | null;
}

declare global {
  interface Window {
    nostrBt: PageState;
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const base = new URL('.', location.href).href.replace(/\/$/, '');
const params = new URLSearchParams(location.search);
const state: PageState = (window.nostrBt = { phase: 'idle', progress: null, result: null, error: null });

const KIND_NAMES: Record<number, string> = {
  0: 'profile',
  1: 'note',
  3: 'follows',
  5: 'deletion',
  6: 'repost',
  7: 'reaction',
  16: 'repost',
  1063: 'file',
  1111: 'comment',
  9735: 'zap',
  10002: 'relays',
  30023: 'article',
};

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

function parseAuthor(input: string): string {
  const s = input.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) return s.toLowerCase();
  if (/^(npub|nprofile)1/.test(s)) {
    try {
      const d = nip19decode(s);
      if (d.type === 'npub') return d.data;
      if (d.type === 'nprofile') return d.data.pubkey;
    } catch {
      // reported below
    }
  }
  throw new Error('not an author key: paste an npub1…, an nprofile1… or 64 hex characters');
}

function setState(phase: PageState['phase'], text: string): void {
  state.phase = phase;
  const s = $('state');
  s.dataset.state = phase;
  s.textContent = text;
}

function renderProgress(p: Progress): void {
  state.progress = p;
  $('report').hidden = false;
  const setBytes = (id: string, n: number) => {
    const d = $(id);
    d.dataset.bytes = String(n);
    d.textContent = bytes(n);
  };
  setBytes('bytes-webseed', p.fromWebSeed);
  setBytes('bytes-peers', p.fromPeers);
  setBytes('bytes-uploaded', p.uploaded);
  $('n-rejected').textContent = String(p.rejected.length);
  $('n-rejected-2').textContent = String(p.rejected.length);
  if (p.phase === 'pointer') setState('pointer', 'Fetching the signed pointer…');
  else if (p.phase === 'bundles' && p.pointer) {
    const done = p.bundles.filter((b) => b.state === 'verified' || b.state === 'failed').length;
    setState(
      'bundles',
      `Pointer verified (${p.pointer.verifier}, seq ${p.pointer.seq}). Reading bundle ${Math.min(done + 1, p.bundles.length)} of ${p.bundles.length}…`,
    );
  } else if (p.phase === 'error') setState('error', p.error ?? 'failed');
  const list = $('bundles');
  list.replaceChildren(
    ...p.bundles.map((b) => {
      const pct = b.fileBytes ? Math.round((100 * b.fileDone) / b.fileBytes) : 0;
      const what =
        b.state === 'failed'
          ? `failed: ${b.problem}`
          : b.state === 'verified'
            ? `${b.events} events verified${b.rejected ? `, ${b.rejected} rejected` : ''}`
            : b.state === 'downloading'
              ? `${pct}% of ${bytes(b.fileBytes)} · ${b.peers} peer${b.peers === 1 ? '' : 's'}${b.webSeedAdded ? ' + web seed' : ''}`
              : b.state;
      return el(
        'li',
        { 'data-state': b.state, 'data-infohash': b.infoHash },
        el('code', {}, b.infoHash.slice(0, 12) + '…'),
        el('span', { class: 'bar' }, el('span', { style: `width:${b.state === 'verified' ? 100 : pct}%` })),
        el('span', { class: 'what' }, what),
      );
    }),
  );
  const rej = $('rejected');
  $('rejected-box').hidden = p.rejected.length === 0;
  if (rej.childElementCount !== p.rejected.length) {
    rej.replaceChildren(
      ...p.rejected.map((r) =>
        el(
          'li',
          { 'data-reason': r.reason },
          el('span', { class: 'reason' }, r.reason),
          ` ${r.detail} — bundle ${r.bundle.slice(0, 12)}…, line ${r.line}`,
          ...(r.preview ? [el('q', {}, r.preview)] : []),
        ),
      ),
    );
  }
}

function renderEvents(events: NostrEvent[]): void {
  $('n-events').textContent = String(events.length);
  $('events').replaceChildren(
    ...events.map((e) => {
      const when = new Date(e.created_at * 1000);
      const content = e.kind === 0 ? profileText(e.content) : e.content;
      const li = el(
        'li',
        { 'data-id': e.id, 'data-kind': String(e.kind) },
        el(
          'div',
          { class: 'meta' },
          el('span', { class: 'kind' }, KIND_NAMES[e.kind] ?? `kind ${e.kind}`),
          el('time', { datetime: when.toISOString(), title: when.toISOString() }, when.toLocaleString()),
          el('code', { class: 'id', title: e.id }, e.id.slice(0, 10)),
        ),
        el('div', { class: 'content' }, content || '(no content)'),
      );
      const imgs = imagesOf(e);
      if (imgs.length) {
        const box = el('div', { class: 'images' });
        for (const i of imgs) {
          const img = el('img', { src: `${base}/${i.sha256}`, alt: i.url ?? i.sha256, loading: 'lazy', 'data-sha256': i.sha256 });
          img.addEventListener('error', () =>
            img.replaceWith(
              el('span', { class: 'noimg', 'data-sha256': i.sha256 }, `image ${i.sha256.slice(0, 12)}… is not archived on this gateway`),
            ),
          );
          box.append(img);
        }
        li.append(box);
      }
      return li;
    }),
  );
}

function profileText(json: string): string {
  try {
    const p = JSON.parse(json) as Record<string, unknown>;
    return ['name', 'display_name', 'about', 'nip05', 'website']
      .filter((k) => typeof p[k] === 'string' && p[k])
      .map((k) => `${k}: ${p[k] as string}`)
      .join('\n');
  } catch {
    return json;
  }
}

async function start(wk: WellKnown, input: string): Promise<void> {
  let author: string;
  try {
    author = parseAuthor(input);
  } catch (err) {
    $('report').hidden = false;
    setState('error', (err as Error).message);
    state.error = (err as Error).message;
    return;
  }
  $<HTMLButtonElement>('go').disabled = true;
  $('events').replaceChildren();
  state.result = null;
  state.error = null;
  const mode = (params.get('webseed') ?? 'auto') as WebSeedMode;
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(location.hostname);
  let r: ReadResult;
  try {
    r = await readArchive({
      base,
      bridgeKey: wk.bridge.hex,
      tracker: params.get('webrtc') === '0' ? null : (wk.endpoints.tracker ?? null),
      author,
      webSeed: ['auto', 'now', 'never'].includes(mode) ? mode : 'auto',
      stallMs: Number(params.get('stallMs') ?? 3000),
      bundleTimeoutMs: Number(params.get('bundleTimeoutMs') ?? 120_000),
      maxFileBytes: 512 * 1024 * 1024,
      maxTorrentBytes: 8 * 1024 * 1024,
      // A loopback gateway needs no STUN; elsewhere a STUN server (WebTorrent's default) lets tabs behind NATs meet.
      iceServers: loopback ? [] : [{ urls: ['stun:stun.l.google.com:19302'] }],
      onProgress: renderProgress,
    });
  } catch (err) {
    state.error = (err as Error).message;
    setState('error', (err as Error).message);
    $<HTMLButtonElement>('go').disabled = false;
    return;
  }
  renderEvents(r.events);
  state.result = { events: r.events, pointerSeq: r.pointer.seq, verifier: r.pointer.verifier };
  const failed = r.progress.bundles.filter((b) => b.state === 'failed').length;
  const rejected = r.progress.rejected.length;
  const left = [r.counts.superseded && `${r.counts.superseded} superseded`, r.counts.deleted && `${r.counts.deleted} deleted`]
    .filter(Boolean)
    .join(', ');
  setState(
    failed || rejected || r.pointer.incomplete ? 'warning' : 'done',
    `${r.events.length} events, every one verified · pointer signed by the bridge (${r.pointer.verifier})` +
      (left ? ` · ${left} left out` : '') +
      (r.pointer.incomplete ? ' · the pointer is incomplete (pages missing)' : '') +
      (failed ? ` · ${failed} bundle${failed === 1 ? '' : 's'} could not be read` : '') +
      (rejected ? ` · ${rejected} rejected (see below)` : ''),
  );
  state.phase = 'done';
  $<HTMLButtonElement>('go').disabled = false;
}

async function main(): Promise<void> {
  let wk: WellKnown;
  try {
    const res = await fetch(`${base}/.well-known/nostr-bt`);
    if (!res.ok) throw new Error(`answered ${res.status}`);
    wk = (await res.json()) as WellKnown;
    if (!/^[0-9a-f]{64}$/.test(wk.bridge?.hex ?? '')) throw new Error('no bridge key in it');
  } catch (err) {
    $('bridge').textContent = `this gateway's /.well-known/nostr-bt could not be read (${(err as Error).message})`;
    state.error = (err as Error).message;
    setState('error', state.error);
    return;
  }
  $('bridge').replaceChildren(
    'bridge ',
    el('code', { title: wk.bridge.hex }, `${wk.bridge.z32.slice(0, 10)}…`),
    ` · ${wk.counts.authors} authors · ${wk.counts.events} events · ${wk.counts.bundles} bundles${wk.endpoints.tracker ? ' · WebRTC' : ''}`,
  );
  const form = $<HTMLFormElement>('lookup');
  const input = $<HTMLInputElement>('author');
  $<HTMLButtonElement>('go').disabled = false;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void start(wk, input.value);
  });
  const preset = params.get('author');
  if (preset) {
    input.value = preset;
    void start(wk, preset);
  }
}

// The tab keeps seeding what it read: what it shares with other readers keeps being shown.
setInterval(() => {
  if (!state.progress) return;
  state.progress.uploaded = uploadedBytes();
  const d = $('bytes-uploaded');
  d.dataset.bytes = String(state.progress.uploaded);
  d.textContent = bytes(state.progress.uploaded);
}, 1000);

void main();
