// Structured JSON logs on stderr (journald-friendly). stdout is never used: it is strfry's
// protocol channel for the plugin and the data channel for CLI output.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export function createLogger(name: string, level: LevelWithSilent = 'info'): Logger {
  return pino(
    { name, level, base: { name, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 2, sync: true }),
  );
}
