// Running the real plugin as strfry does (`/bin/sh -c "<plugin>"`) for its command line, config
// errors and exit summary, and reading back what it left in a spool directory.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The test's environment without the variables that pick a config or data directory. */
export function pluginEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NOSTR_BT_CONFIG;
  delete env.NOSTR_BT_DATA_DIR;
  delete env.NOSTR_BT_PLUGIN_LOG_LEVEL;
  return { ...env, ...extra };
}

export interface PluginRun {
  /** null: it had not exited after `timeoutMs` and was killed. */
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command` through /bin/sh -c. `input` is written in one go and stdin closed at once (a
 * relay that sends a few events and stops); without it stdin stays open, as strfry keeps it, so
 * a plugin that should not read it must exit by itself.
 */
export function runPlugin(
  command: string,
  opts: { cwd: string; env: NodeJS.ProcessEnv; input?: string; timeoutMs?: number },
): Promise<PluginRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => {
      /* exited before reading: fine for --help */
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, opts.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code: timedOut ? null : code, stdout, stderr });
    });
  });
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** The JSON log lines on a plugin's stderr. */
export function logLines(stderr: string): LogLine[] {
  const out: LogLine[] = [];
  for (const l of stderr.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as LogLine);
    } catch {
      /* not a log line */
    }
  }
  return out;
}

export interface ExitSummary {
  answered: number;
  forwarded: number;
  spooled: number;
  dropped: number;
  droppedAfterSend: number;
  spoolWriteErrors: number;
}

/** The plugin's last word: what became of its lines. */
export function exitSummary(stderr: string): ExitSummary {
  const line = logLines(stderr).find((l) => l.msg.startsWith('plugin stopping'));
  if (!line) throw new Error(`no exit summary on stderr:\n${stderr.slice(-3000)}`);
  return line as unknown as ExitSummary;
}

/** Every line in the spool files of `dir` (none if it does not exist). */
export function spoolLines(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const lines: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!/\.(open|ready)$/.test(name)) continue;
    for (const l of readFileSync(join(dir, name), 'utf8').split('\n')) if (l.length > 0) lines.push(l);
  }
  return lines;
}

/** Every file under `dir`, relative, recursively. */
export function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort();
}
