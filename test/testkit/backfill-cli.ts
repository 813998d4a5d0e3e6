// Runs the real `nostr-bt-backfill` command (dist/scripts/backfill.js) as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { BackfillSummary } from '../../sidecar/backfill/runner.js';
import { DIST } from './sidecar-process.js';

export const BACKFILL_BIN = join(DIST, 'scripts/backfill.js');

export type CliSummary = BackfillSummary & { dryRun: boolean; trusted: boolean };

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The --json summary (null when none was printed). */
  summary: CliSummary | null;
}

export interface CliChild {
  proc: ChildProcess;
  stderr(): string;
  done: Promise<CliRun>;
}

export function spawnBackfill(configPath: string, args: string[], opts: { input?: string } = {}): CliChild {
  const env = { ...process.env };
  delete env.NOSTR_BT_CONFIG;
  delete env.NOSTR_BT_DATA_DIR;
  const proc = spawn(process.execPath, [BACKFILL_BIN, '--config', configPath, '--json', ...args], {
    stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    env,
  });
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-100_000)));
  if (opts.input !== undefined) proc.stdin!.end(opts.input);
  const done = new Promise<CliRun>((resolve) => {
    proc.once('exit', (code, signal) => {
      // Let the pipes flush.
      setImmediate(() => {
        let summary: CliSummary | null = null;
        const last = stdout.trim().split('\n').pop();
        if (last) {
          try {
            summary = JSON.parse(last) as CliSummary;
          } catch {
            /* not JSON */
          }
        }
        resolve({ code, signal, stdout, stderr, summary });
      });
    });
  });
  return { proc, stderr: () => stderr, done };
}

export function runBackfill(configPath: string, args: string[], opts: { input?: string } = {}): Promise<CliRun> {
  return spawnBackfill(configPath, args, opts).done;
}
