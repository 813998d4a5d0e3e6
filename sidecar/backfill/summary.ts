// The end-of-run report of a backfill: a readable text for operators (and the same as JSON).
import type { BackfillSummary } from './runner.js';
import type { Tally } from './channel.js';
import { REPLAY_QUARANTINE_LIMIT } from '../ingest/quarantine.js';

const INVALID_MEANING: Record<string, string> = {
  malformed: 'not JSON, or not an event object',
  'bad-field': 'a field of the wrong type or format',
  'bad-id': 'id does not match the content',
  'bad-sig': 'signature does not verify',
  'line-too-long': 'longer than ingest.maxLineBytes, not sent',
  error: 'unexpected error',
};

const n = (x: number) => x.toLocaleString('en-US');

function list(t: Tally, meaning: Record<string, string> = {}): string {
  return Object.entries(t)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${n(v)}${meaning[k] ? ` (${meaning[k]})` : ''}`)
    .join(', ');
}

const sum = (t: Tally) => Object.values(t).reduce((a, b) => a + b, 0);

export function summaryText(s: BackfillSummary, opts: { dryRun?: boolean; quarantineDir?: string } = {}): string {
  const secs = s.elapsedMs / 1000;
  const rate = secs > 0 ? Math.round(s.read / secs) : s.read;
  const rows: [string, string][] = [];
  rows.push(['source', s.source]);
  if (s.resumed) rows.push(['resumed', s.resumed]);
  rows.push(['read', `${n(s.read)} lines, ${n(Math.round(s.bytes / 1024))} KiB in ${secs.toFixed(1)} s (${n(rate)} lines/s)`]);
  rows.push([opts.dryRun ? 'would be new' : 'new', n(s.new)]);
  rows.push(['duplicates', `${n(s.duplicates)}${opts.dryRun ? ' already in the index' : ''}`]);
  const skipped = sum(s.skipped);
  rows.push(['skipped by policy', skipped === 0 ? '0' : `${n(skipped)}: ${list(s.skipped)}`]);
  const invalid = sum(s.invalid);
  rows.push(['errors', invalid === 0 ? '0' : `${n(invalid)}: ${list(s.invalid, INVALID_MEANING)}`]);
  if (s.oversizedLines.length)
    rows.push([
      '',
      `lines too long: ${s.oversizedLines.join(', ')}${s.invalid['line-too-long']! > s.oversizedLines.length ? ', ...' : ''}`,
    ]);
  const quarantined = invalid - (s.invalid['line-too-long'] ?? 0);
  if (quarantined > 0 && opts.quarantineDir && !opts.dryRun) {
    const limit = REPLAY_QUARANTINE_LIMIT.lines;
    rows.push([
      '',
      quarantined > limit
        ? `at most the first ${n(limit)} rejected lines of a run (${REPLAY_QUARANTINE_LIMIT.bytes / 1024 ** 2} MiB) are kept in ${opts.quarantineDir}; the other ${n(quarantined - limit)} are only counted`
        : `rejected lines are kept in ${opts.quarantineDir}`,
    ]);
  }
  if (s.filtered) rows.push(['outside --since/--until', n(s.filtered)]);
  if (s.empty) rows.push(['empty lines', n(s.empty)]);
  if (s.sourceError) rows.push(['SOURCE FAILED', s.sourceError]);
  if (s.channelError) rows.push(['SIDECAR', s.channelError]);
  if (s.acked < s.sent) rows.push(['not acknowledged', `${n(s.sent - s.acked)} lines (sent again by the next run)`]);
  if (s.notEvents)
    rows.push([
      'WARNING',
      `not one of the ${n(s.read - s.empty - s.filtered)} lines is a valid Nostr event: is this the right source? (a JSONL file of events, strfry plugin lines or \`strfry export\`)`,
    ]);
  const state = s.notEvents
    ? 'not events: nothing archived'
    : s.complete
      ? 'complete'
      : s.interrupted
        ? 'interrupted: run the same command again to resume'
        : 'incomplete';
  rows.push(['result', state]);
  if (s.checkpoint) {
    const cp = s.checkpoint;
    const where =
      cp.resumeCreatedAt !== undefined
        ? `next run starts at created_at ${cp.resumeCreatedAt} minus the margin`
        : cp.offset !== undefined
          ? `next run starts at byte ${n(cp.offset)}`
          : 'nothing delivered yet';
    rows.push(['checkpoint', where]);
  } else if (!opts.dryRun && s.checkpointKey === null) rows.push(['checkpoint', 'none (stdin cannot be resumed)']);
  const w = Math.max(...rows.map((r) => r[0].length));
  return (
    `${opts.dryRun ? 'backfill dry run (nothing written)' : 'backfill'}\n` +
    rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n') +
    '\n'
  );
}
