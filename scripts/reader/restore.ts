// `nostr-bt restore`: a whole bridge back into a relay (disaster recovery for an operator who lost
// the relay's database). The bridge's catalog (docs/protocol.md §11) names every bundle and the
// authors in each; every author file is fetched (only its pieces), every event verified as
// `resolve` verifies it (on worker threads), and the events go to `strfry import` (execa, with
// backpressure) or to a JSONL file. A bundle's files are asked for together, so each bundle is
// fetched once. Resumable: a state file lists the (bundle, author) files already delivered — after
// strfry exited 0, or after the output file was fsynced — and a new run skips them.
import { appendFile, open, readFile, rename, writeFile } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import type { NostrEvent } from '../../sidecar/formats/nostr-event.js';
import { canonicalJson } from '../../sidecar/formats/nostr-event.js';
import type { CatalogBundle } from '../../sidecar/formats/catalog.js';
import { readCatalog, type CatalogLimits } from './catalog-read.js';
import type { ReaderContext } from './reader-context.js';
import { StrfryImport } from './strfry-import.js';
import { Rejections, type RejectReason } from './verify-events.js';
import { VerifyPool } from './verify-pool.js';

export type RestoreSink = { kind: 'strfry'; strfry: string; config: string } | { kind: 'file'; path: string };

export interface RestoreOptions {
  bridge: Buffer;
  since?: number;
  sink: RestoreSink;
  /** Where the delivered (bundle, author) files are listed. */
  statePath: string;
  limits?: Partial<CatalogLimits>;
  /** Per author file. */
  fileTimeoutMs: number;
  maxFileBytes: number;
  maxEventBytes: number;
  concurrency: number;
  /** Threads that check signatures (default cores − 1, at least 1; 0: on the main thread). */
  verifyThreads?: number;
  progress: boolean;
  signal?: AbortSignal;
}

export interface RestoreSummary {
  bridge: string;
  catalog: string | null;
  bundles: number;
  files: { total: number; skipped: number; done: number; failed: number };
  events: { sent: number; unique: number; filtered: number };
  rejected: Partial<Record<RejectReason, number>>;
  failures: { ih: string; author: string; reason: string }[];
  sink: { ok: boolean; detail: string };
  ms: number;
  /** What went wrong before any file was read (no item, no catalog...). */
  error?: string;
}

const FAILURES_LISTED = 20;
/** Files of one bundle asked for at once (each holds its pieces until it is verified). */
const FILES_AT_ONCE_PER_BUNDLE = 64;

async function loadState(path: string, bridge: string): Promise<Set<string>> {
  try {
    const s = JSON.parse(await readFile(path, 'utf8')) as { bridge?: string; done?: string[] };
    if (s.bridge !== bridge) throw new Error(`state file ${path} is for bridge ${String(s.bridge)}, not ${bridge}`);
    return new Set(s.done ?? []);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
    throw err;
  }
}

async function saveState(path: string, bridge: string, done: Set<string>): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, JSON.stringify({ bridge, done: [...done].sort() }) + '\n');
  await rename(tmp, path);
}

/** Every verified event of every author in the bridge's catalog into the sink. Never throws on what the network sends. */
export async function restoreBridge(ctx: ReaderContext, o: RestoreOptions): Promise<RestoreSummary> {
  const t0 = Date.now();
  const bridge = o.bridge.toString('hex');
  const summary: RestoreSummary = {
    bridge,
    catalog: null,
    bundles: 0,
    files: { total: 0, skipped: 0, done: 0, failed: 0 },
    events: { sent: 0, unique: 0, filtered: 0 },
    rejected: {},
    failures: [],
    sink: { ok: true, detail: '' },
    ms: 0,
  };
  // Its threads load the signature check while the catalog comes in.
  const pool = new VerifyPool(o.verifyThreads);
  let done: Set<string>;
  let cat: Awaited<ReturnType<typeof readCatalog>>;
  try {
    cat = await readCatalog(ctx, o.bridge, { limits: o.limits, signal: o.signal });
    if (cat.status !== 'found') {
      summary.error = `${cat.status}: ${cat.detail}`;
      summary.ms = Date.now() - t0;
      await pool.close();
      return summary;
    }
    done = await loadState(o.statePath, bridge);
  } catch (err) {
    await pool.close();
    throw err;
  }
  summary.catalog = cat.infoHash;
  summary.bundles = cat.catalog.bundles.length;
  const work: { b: CatalogBundle; author: string; key: string }[] = [];
  for (const b of cat.catalog.bundles) for (const author of b.authors) work.push({ b, author, key: `${b.ih}:${author}` });
  summary.files.total = work.length;
  const todo = work.filter((w) => !done.has(w.key));
  summary.files.skipped = work.length - todo.length;

  const importer = o.sink.kind === 'strfry' ? new StrfryImport(o.sink.strfry, o.sink.config) : null;
  const out =
    o.sink.kind === 'file'
      ? await open(o.sink.path, 'a').catch(async (err: unknown) => {
          await pool.close();
          throw err;
        })
      : null;
  const delivered = new Set<string>();
  const seen = new Set<string>();
  const rejections = new Rejections();
  const bar = o.progress
    ? new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: 'restore [{bar}] {value}/{total} files | {events} events | {rate} events/s | {failed} failed',
          hideCursor: false,
          noTTYOutput: !process.stderr.isTTY,
          notTTYSchedule: 2000,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(Math.max(1, todo.length), 0, { events: 0, rate: '0', failed: 0 });
  // Writes are serialized (one sink), fetches run `concurrency` at a time.
  let writing: Promise<void> = Promise.resolve();
  const deliver = (events: NostrEvent[]): Promise<void> => {
    writing = writing.then(async () => {
      let text = '';
      for (const e of events) {
        if (o.since !== undefined && e.created_at < o.since) {
          summary.events.filtered++;
          continue;
        }
        summary.events.sent++;
        if (!seen.has(e.id)) {
          seen.add(e.id);
          summary.events.unique++;
        }
        const line = canonicalJson(e);
        if (importer) await importer.write(line);
        else text += line + '\n';
      }
      if (out && text) await appendFile(out, text);
    });
    return writing;
  };
  // Bundle by bundle (`concurrency` bundles at once): every file still to do of a bundle is asked
  // for at once, so its metadata is fetched once and its pieces come in one swarm session
  // instead of one file after another.
  const byBundle = new Map<string, { b: CatalogBundle; author: string; key: string }[]>();
  for (const w of todo) {
    const list = byBundle.get(w.b.ih);
    if (list) list.push(w);
    else byBundle.set(w.b.ih, [w]);
  }
  const groups = [...byBundle.values()];
  let finished = 0;
  const fetchFile = async (w: { b: CatalogBundle; author: string; key: string }) => {
    const chunks: Buffer[] = [];
    const r = await ctx.fetcher.fetchAuthorFile(
      w.b.ih,
      w.author,
      { maxMetadataBytes: o.limits?.maxMetadataBytes ?? 4 * 1024 * 1024, maxFileBytes: o.maxFileBytes, timeoutMs: o.fileTimeoutMs },
      { signal: o.signal, onPiece: (i, _n, data) => (chunks[i] = Buffer.from(data)) },
    );
    if (!r.ok) {
      summary.files.failed++;
      if (summary.failures.length < FAILURES_LISTED)
        summary.failures.push({ ih: w.b.ih, author: w.author, reason: `${r.reason}: ${r.detail}` });
    } else {
      const { events, rejected } = await pool.verify(Buffer.concat(chunks), w.author, o.maxEventBytes);
      let bad = 0;
      for (const [reason, n] of Object.entries(rejected)) {
        rejections.add(reason as RejectReason, n ?? 0);
        bad += n ?? 0;
      }
      await deliver(events);
      // A file with rejected lines is delivered as far as it verifies, and not marked done: a
      // later run (another peer, the origin back) may get it whole.
      if (bad === 0) delivered.add(w.key);
      else {
        summary.files.failed++;
        if (summary.failures.length < FAILURES_LISTED)
          summary.failures.push({ ih: w.b.ih, author: w.author, reason: `${bad} lines rejected` });
      }
      summary.files.done++;
    }
    finished++;
    bar?.update(finished, {
      events: summary.events.sent,
      rate: (summary.events.sent / Math.max(0.001, (Date.now() - t0) / 1000)).toFixed(0),
      failed: summary.files.failed,
    });
  };
  let nextGroup = 0;
  const worker = async () => {
    while (nextGroup < groups.length && !o.signal?.aborted) {
      const files = groups[nextGroup++]!;
      let nextFile = 0;
      const fileWorker = async () => {
        while (nextFile < files.length && !o.signal?.aborted) await fetchFile(files[nextFile++]!);
      };
      await Promise.all(Array.from({ length: Math.min(FILES_AT_ONCE_PER_BUNDLE, files.length) }, fileWorker));
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, groups.length)) }, worker));
  } finally {
    await pool.close();
  }
  await writing;
  bar?.stop();
  summary.rejected = rejections.counts;
  if (importer) {
    const r = await importer.finish();
    summary.sink = {
      ok: !r.failed,
      detail: r.failed
        ? `strfry import failed: ${r.error}${r.output ? `\n${r.output.trimEnd()}` : ''}`
        : `strfry import: ${r.lines} events sent${r.output ? `\n${r.output.trimEnd()}` : ''}`,
    };
  }
  if (out) {
    await out.sync();
    await out.close();
    summary.sink = { ok: true, detail: `${summary.events.sent} events appended to ${(o.sink as { path: string }).path}` };
  }
  // Only what the sink took for certain is marked done.
  if (summary.sink.ok && delivered.size > 0) {
    for (const k of delivered) done.add(k);
    await saveState(o.statePath, bridge, done);
  }
  summary.ms = Date.now() - t0;
  return summary;
}

export function restoreText(s: RestoreSummary): string {
  if (s.error) return `restore of ${s.bridge}: ${s.error}\n`;
  const rejected = Object.entries(s.rejected)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
  let t = `restore of bridge ${s.bridge} (catalog ${s.catalog}, ${s.bundles} bundles)\n`;
  t += `files: ${s.files.done} read, ${s.files.skipped} skipped (done before), ${s.files.failed} failed, of ${s.files.total}\n`;
  t += `events: ${s.events.sent} sent (${s.events.unique} distinct), ${s.events.filtered} before --since${rejected ? `; rejected lines: ${rejected}` : ''}\n`;
  for (const f of s.failures) t += `  failed: ${f.ih} ${f.author}: ${f.reason}\n`;
  t += `${s.sink.detail}\n${(s.ms / 1000).toFixed(1)} s\n`;
  return t;
}
