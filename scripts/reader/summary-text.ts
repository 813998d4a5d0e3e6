// Human-readable summaries on stderr (`--summary json` prints the objects instead).
import type { CrawlSummary } from './crawl.js';
import type { ResolveSummary } from './resolve.js';

const kb = (n: number) =>
  n < 10_240 ? `${n} B` : n < 10 * 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;

function counts(o: Record<string, number | undefined>): string {
  const parts = Object.entries(o).filter(([, v]) => v);
  return parts.length ? parts.map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
}

export function resolveText(s: ResolveSummary): string {
  const lines: string[] = [];
  lines.push(
    `author ${s.author}: ${s.events.output} events in ${(s.ms / 1000).toFixed(1)} s${s.swarmComplete ? '' : ' (swarm incomplete)'}`,
  );
  for (const b of s.bridges) {
    const detail =
      b.status === 'found'
        ? `${b.bundles}/${b.n} bundles over ${b.pages} page(s), seq ${b.seq}${b.problems?.length ? `; ${b.problems.join('; ')}` : ''}`
        : b.status === 'absent'
          ? 'no pointer for this author'
          : b.status === 'timeout'
            ? 'no answer in time'
            : `invalid pointer: ${b.reason}`;
    lines.push(`  bridge ${b.bridge.slice(0, 16)}…: ${detail}`);
  }
  const ok = s.bundles.filter((b) => b.ok).length;
  const failed = s.bundles.filter((b) => !b.ok);
  lines.push(
    `  bundles: ${ok} read${failed.length ? `, ${failed.length} not: ${counts(tally(failed.map((b) => b.reason ?? 'error')))}` : ''}`,
  );
  for (const b of failed.slice(0, 10)) lines.push(`    ${b.infoHash}: ${b.reason}${b.detail ? ` (${b.detail})` : ''}`);
  for (const r of s.relays) {
    lines.push(`  relay ${r.url}: ${r.ok ? `${r.newEvents} new of ${r.received} (asked ${r.asked})` : `failed: ${r.error}`}`);
  }
  const e = s.events;
  lines.push(
    `  events: ${e.output} output; left out: ${counts({ duplicate: e.duplicates, superseded: e.superseded, deleted: e.deleted, ephemeral: e.ephemeral, expired: e.expired, filtered: e.filtered })}`,
  );
  lines.push(`  sources: ${counts(s.sources)}`);
  lines.push(`  rejected: ${counts(s.rejected)}`);
  lines.push(
    `  bytes: ${kb(s.bytes.received)} received for ${kb(s.bytes.files)} of author files, ${kb(s.bytes.metadata)} metadata${s.bytes.relays ? `, ${kb(s.bytes.relays)} from relays` : ''}`,
  );
  return lines.join('\n') + '\n';
}

export function crawlText(s: CrawlSummary): string {
  const a = s.authors;
  return (
    [
      `crawl from ${s.root} to depth ${s.depth}: ${a.resolved} authors (by depth: ${s.authorsByDepth.join(', ')}), ${s.events} events, ${kb(s.bytes)}, ${(s.ms / 1000).toFixed(1)} s`,
      `  authors: ${a.found} found, ${a.notFound} not found, ${a.failed} failed, ${a.leftInQueue} left in the queue${s.stoppedBy ? ` (stopped by ${s.stoppedBy})` : ''}`,
      `  root contact list: ${s.rootContactList ? `${s.rootContactList.id} (${s.rootContactList.follows} follows)` : 'none found'}; contact lists followed: ${s.contactListsFollowed}`,
      `  rejected: ${counts(s.rejected)}`,
    ].join('\n') + '\n'
  );
}

function tally(xs: string[]): Record<string, number> {
  const o: Record<string, number> = {};
  for (const x of xs) o[x] = (o[x] ?? 0) + 1;
  return o;
}
