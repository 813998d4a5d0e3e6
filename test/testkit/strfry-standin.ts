#!/usr/bin/env node
// A stand-in for the `strfry` binary (strfry cannot be installed here), for tests of the
// `strfry export` path: `strfry [--config=<file>] export [--since=<s>] [--until=<u>] [--reverse]`.
// Like strfry it reads its config (`./strfry.conf` by default) for `db = "<dir>"`; its "database"
// is `<db>/events.jsonl`, one event per line in strfry's export form, kept in created_at order by
// whoever writes it (test/testkit/strfry-db.ts). It streams the lines with created_at within
// [since, until] (inclusive, as strfry does) to stdout, honouring pipe backpressure.
// `<db>/standin.json` can make it misbehave: {"failAfterLines": n, "exitCode": c, "stderr": "..."}
// prints n lines then writes the message to stderr and exits with c; {"lineDelayMs": ms} slows it.
// Every invocation's argv is appended to `<db>/invocations.jsonl`.
import { appendFileSync, createReadStream, existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

interface Control {
  failAfterLines?: number;
  exitCode?: number;
  stderr?: string;
  lineDelayMs?: number;
}

function fail(msg: string, code = 1): never {
  process.stderr.write(`${msg}\n`);
  process.exit(code);
}

const argv = process.argv.slice(2);
if (argv.length === 0) {
  // Also what `node --test` does with every file under test/: nothing to run.
  process.stderr.write('usage: strfry [--config=<file>] export [--since=<since>] [--until=<until>] [--reverse]\n');
  process.exit(0);
}
let configPath = './strfry.conf';
const rest: string[] = [];
for (const a of argv) {
  if (a.startsWith('--config=')) configPath = a.slice('--config='.length);
  else rest.push(a);
}
if (!existsSync(configPath)) fail(`Unable to find config file: ${configPath}`);
const dbMatch = /^\s*db\s*=\s*"([^"]*)"/m.exec(readFileSync(configPath, 'utf8'));
if (!dbMatch) fail(`config ${configPath}: no db setting`);
const db = resolve(dirname(resolve(configPath)), dbMatch[1]!);
appendFileSync(join(db, 'invocations.jsonl'), JSON.stringify(argv) + '\n');
const [cmd, ...opts] = rest;
if (cmd !== 'export') fail(`Unknown command: ${cmd ?? '(none)'} (this stand-in only supports export)`);
let since = 0;
let until = Number.MAX_SAFE_INTEGER;
let reverse = false;
for (const o of opts) {
  const m = /^--(since|until)=(\d+)$/.exec(o);
  if (m) {
    if (m[1] === 'since') since = Number(m[2]);
    else until = Number(m[2]);
  } else if (o === '--reverse') reverse = true;
  else fail(`Usage: export [--since=<since>] [--until=<until>] [--reverse]\nunknown option ${o}`);
}
const controlPath = join(db, 'standin.json');
const control: Control = existsSync(controlPath) ? (JSON.parse(readFileSync(controlPath, 'utf8')) as Control) : {};
const eventsPath = join(db, 'events.jsonl');
if (!existsSync(eventsPath)) fail(`db ${db}: no events.jsonl (not a strfry database)`);

const out = process.stdout;
const write = (s: string) => (out.write(s) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let printed = 0;
async function emit(line: string): Promise<void> {
  if (control.failAfterLines !== undefined && printed >= control.failAfterLines) {
    await write('');
    fail(control.stderr ?? 'stand-in strfry: told to fail', control.exitCode ?? 1);
  }
  await write(line + '\n');
  printed++;
  if (control.lineDelayMs) await sleep(control.lineDelayMs);
}

const inRange = (line: string) => {
  const m = /"created_at":(\d+)/.exec(line);
  const c = m ? Number(m[1]) : -1;
  return c >= since && c <= until;
};

if (reverse) {
  const lines = readFileSync(eventsPath, 'utf8')
    .split('\n')
    .filter((l) => l && inRange(l))
    .reverse();
  for (const l of lines) await emit(l);
} else {
  const rl = createInterface({ input: createReadStream(eventsPath), crlfDelay: Infinity });
  for await (const l of rl) if (l && inRange(l)) await emit(l);
}
if (control.failAfterLines !== undefined && printed >= control.failAfterLines)
  fail(control.stderr ?? 'stand-in strfry: told to fail', control.exitCode ?? 1);
