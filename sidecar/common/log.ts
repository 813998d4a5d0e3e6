// Structured JSON logs on stderr (journald-friendly). stdout is never used: it is strfry's
// protocol channel for the plugin and the data channel for CLI output.
import { fstatSync } from 'node:fs';
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** pino level → syslog priority, for journald's `<N>` line prefix (journalctl -p works). */
const PRIORITY: Record<string, number> = { '10': 7, '20': 7, '30': 6, '40': 4, '50': 3, '60': 2 };

export function createLogger(name: string, level: LevelWithSilent = 'info'): Logger {
  const journal = stderrIsJournal();
  return pino(
    {
      name,
      level,
      base: { name, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // journald strips the prefix, so the stored message is the plain JSON object.
      ...(journal ? { hooks: { streamWrite: (s: string) => `<${PRIORITY[/"level":(\d+)/.exec(s)?.[1] ?? '30'] ?? 6}>${s}` } } : {}),
    },
    pino.destination({ dest: 2, sync: true }),
  );
}

/** systemd sets JOURNAL_STREAM=<dev>:<inode> of the journal stream it connects to stderr. */
function stderrIsJournal(): boolean {
  const js = process.env.JOURNAL_STREAM;
  if (!js) return false;
  try {
    const st = fstatSync(2);
    return js === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}
