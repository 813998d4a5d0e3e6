// An author's media on a bridge, from their pointer (docs/protocol.md §8 "Media list"): page 0's
// `m` names the author's media list torrent; its one file `<author>.jsonl` lists the blobs the
// bridge holds for the author's events (sha256, blob torrent infohash, size). The list is fetched
// with the bundle fetcher (same deadline and size limits as an author's file) and parsed strictly.
import { BadMediaList, parseMediaList, type MediaListEntry } from '../../sidecar/formats/media-list.js';
import type { MediaAttempt, MediaListLimits, MediaListResult } from './media-types.js';
import { lookupAuthorPointer } from './pointer-lookup.js';
import type { ReaderContext } from './reader-context.js';

export type { MediaListEntry, MediaListLimits, MediaListResult };

/** One bridge's media list for an author. Never throws for what the bridge or peers did. */
export async function fetchMediaList(
  ctx: ReaderContext,
  bridge: Buffer,
  author: string,
  limits: MediaListLimits,
  signal?: AbortSignal,
): Promise<MediaListResult> {
  const b = bridge.toString('hex');
  const p = await lookupAuthorPointer(ctx.dht, bridge, author, Math.min(limits.timeoutMs, 30_000));
  if (p.status !== 'found')
    return { ok: false, bridge: b, reason: `pointer-${p.status}`, detail: p.status === 'invalid' ? p.reason : `no pointer (${p.status})` };
  const ih = p.pointer.mediaList;
  if (!ih)
    return {
      ok: false,
      bridge: b,
      reason: 'no-media',
      detail: 'the pointer names no media list (the bridge holds no media of this author)',
    };
  const chunks: Buffer[] = [];
  const out = await ctx.fetcher.fetchAuthorFile(
    ih,
    author,
    { maxMetadataBytes: 1024 * 1024, maxFileBytes: limits.maxListBytes, timeoutMs: limits.timeoutMs },
    { ...(signal ? { signal } : {}), onPiece: (index, _count, data) => void (chunks[index] = Buffer.from(data)) },
  );
  if (!out.ok) return { ok: false, bridge: b, reason: out.reason, detail: out.detail };
  try {
    return { ok: true, bridge: b, infoHash: ih, entries: parseMediaList(Buffer.concat(chunks)) };
  } catch (err) {
    if (err instanceof BadMediaList) return { ok: false, bridge: b, reason: 'bad-list', detail: err.message };
    throw err;
  }
}

/** The first bridge whose media list of `author` has `sha256`. */
export async function findInMediaLists(
  ctx: ReaderContext,
  bridges: Buffer[],
  author: string,
  sha256: string,
  limits: MediaListLimits,
): Promise<{ entry?: MediaListEntry; attempts: MediaAttempt[] }> {
  const attempts: MediaAttempt[] = [];
  for (const bridge of bridges) {
    const t0 = Date.now();
    const r = await fetchMediaList(ctx, bridge, author, limits);
    const source = `media list (bridge ${bridge.toString('hex').slice(0, 16)}…)`;
    if (!r.ok) {
      attempts.push({ source, ok: false, reason: r.reason, detail: r.detail, bytes: 0, ms: Date.now() - t0 });
      continue;
    }
    const entry = r.entries.find((e) => e.sha256 === sha256);
    attempts.push({
      source,
      ok: entry !== undefined,
      ...(entry ? {} : { reason: 'not-listed', detail: `the list has ${r.entries.length} blobs, not this one` }),
      bytes: 0,
      ms: Date.now() - t0,
    });
    if (entry) return { entry, attempts };
  }
  return { attempts };
}
