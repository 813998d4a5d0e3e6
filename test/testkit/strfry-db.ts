// Test helpers around the stand-in strfry (strfry-standin.ts): a "database" directory with a
// strfry.conf pointing at it, written in created_at order as strfry's export would walk it.
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { DIST } from './sidecar-process.js';

export const STRFRY_STANDIN = join(DIST, 'test/testkit/strfry-standin.js');

/** The stand-in's path, made executable (tsc does not set the mode). */
export function strfryStandin(): string {
  chmodSync(STRFRY_STANDIN, 0o755);
  return STRFRY_STANDIN;
}

export interface StrfryDb {
  dir: string;
  config: string;
  /** Replaces the database content (sorted by created_at, stable). */
  setEvents(lines: string[]): void;
  addEvents(lines: string[]): void;
  lines(): string[];
  /** Makes the stand-in misbehave (see strfry-standin.ts); null restores it. */
  control(c: { failAfterLines?: number; exitCode?: number; stderr?: string; lineDelayMs?: number } | null): void;
  /** argv of every invocation so far. */
  invocations(): string[][];
}

const createdAt = (l: string) => Number(/"created_at":(\d+)/.exec(l)?.[1] ?? -1);

export function makeStrfryDb(parent: string, lines: string[] = []): StrfryDb {
  const dir = join(parent, 'strfry-db');
  mkdirSync(dir, { recursive: true });
  const config = join(parent, 'strfry.conf');
  writeFileSync(config, 'db = "./strfry-db/"\n\nrelay {\n    port = 7777\n}\n');
  const eventsPath = join(dir, 'events.jsonl');
  const db: StrfryDb = {
    dir,
    config,
    setEvents(ls) {
      const sorted = ls.map((l, i) => [createdAt(l), i, l] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      writeFileSync(eventsPath, sorted.map((x) => x[2] + '\n').join(''));
    },
    addEvents(ls) {
      db.setEvents([...db.lines(), ...ls]);
    },
    lines() {
      return existsSync(eventsPath) ? readFileSync(eventsPath, 'utf8').split('\n').filter(Boolean) : [];
    },
    control(c) {
      const p = join(dir, 'standin.json');
      if (c === null) rmSync(p, { force: true });
      else writeFileSync(p, JSON.stringify(c));
    },
    invocations() {
      const p = join(dir, 'invocations.jsonl');
      return existsSync(p)
        ? readFileSync(p, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as string[])
        : [];
    },
  };
  db.setEvents(lines);
  return db;
}
