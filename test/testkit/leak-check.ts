// Loaded into every test file's process by `npm test` (`node --test --import <this file>`), it
// proves that tests leave nothing behind:
//
// - processes: every process a test starts (children, their children, and the orphans they leave
//   when a parent dies first, e.g. `cmd &` under a failing `bash -e`) must be gone when the test
//   ends. A test that leaves one fails, naming it, and the process is SIGKILLed. Processes started
//   in a file's `before` hook may live until the file ends; any still alive then fails the file.
// - temp files: the file's os.tmpdir() is a fresh directory of its own (TMPDIR, inherited by the
//   processes it starts); anything left in it when the file ends fails the file, naming what.
//
// Processes are told apart by /proc/<pid>/stat alone (parent, session, start time), never by
// anything they hold. Linux only; elsewhere the process half does nothing.
import { afterEach, beforeEach, type TestContext } from 'node:test';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

interface Proc {
  pid: number;
  ppid: number;
  sid: number;
  state: string;
  /** Start time in clock ticks since boot: with the pid, a process's identity (pids are reused). */
  start: string;
}

const key = (p: Proc) => `${p.pid}:${p.start}`;
/** How long a process may take to exit after its test ended (a stop that was not awaited). */
const GRACE_MS = 5000;
const SAMPLE_MS = 200;

function readStat(pid: number | string): Proc | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined; // gone
  }
  // pid (comm) state ppid pgrp session ... starttime is field 22; comm may hold spaces and ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pid: Number(pid), state: f[0]!, ppid: Number(f[1]), sid: Number(f[3]), start: f[19]! };
}

function listPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((n) => n.charCodeAt(0) <= 57)
      .map(Number);
  } catch {
    return [];
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ').slice(0, 300);
  } catch {
    return '?';
  }
}

/**
 * Every process this test process started, directly or not, that was seen alive. Orphans are
 * re-parented (to init or a subreaper), so membership is decided when a process is first seen
 * and remembered; a `detached` child leads its own session, which its descendants keep.
 * A sample reads the stat of new pids only: reading all of /proc every time costs too much CPU
 * on a busy machine.
 */
class Family {
  /** Kept after they die: their pids are the session ids of the orphans they leave. */
  readonly members = new Map<number, Proc>();
  /** Pids seen (start time), family or not; forgotten when they disappear from /proc. */
  private readonly seen = new Map<number, string>();

  sample(): void {
    const pids = listPids();
    const listed = new Set(pids);
    for (const pid of this.seen.keys()) if (!listed.has(pid)) this.seen.delete(pid);
    const fresh: Proc[] = [];
    for (const pid of pids) {
      if (this.seen.has(pid) || pid === process.pid) continue;
      const p = readStat(pid);
      if (!p) continue;
      this.seen.set(pid, p.start);
      fresh.push(p);
    }
    const isOurs = (p: Proc) => {
      if (p.ppid === process.pid || this.members.has(p.ppid)) return true;
      const leader = this.members.get(p.sid);
      return leader !== undefined && leader.sid === leader.pid;
    };
    // Children may be listed before their parents: repeat until nothing is added.
    for (let added = true; added; ) {
      added = false;
      for (let i = 0; i < fresh.length; i++) {
        const p = fresh[i]!;
        if (isOurs(p)) {
          this.members.set(p.pid, p);
          fresh[i] = fresh[fresh.length - 1]!;
          fresh.pop();
          i--;
          added = true;
        }
      }
    }
  }

  /** Members alive now (zombies are dead: only their parent has not reaped them yet). */
  alive(): Proc[] {
    this.sample();
    return [...this.members.values()].filter((m) => {
      const p = readStat(m.pid);
      return p !== undefined && p.start === m.start && p.state !== 'Z' && p.state !== 'X';
    });
  }
}

function describe(procs: Proc[]): string {
  return procs.map((p) => `pid ${p.pid}: ${cmdline(p.pid)}`).join('; ');
}

function killAll(procs: Proc[]): void {
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// Only in a test file's own process (the runner starts each file with NODE_TEST_CONTEXT=child...),
// not in its worker threads (they inherit --import and the environment).
if (isMainThread && process.env.NODE_TEST_CONTEXT?.startsWith('child')) {
  const file = basename(process.argv[1] ?? 'test').replace(/\.test\.[cm]?js$/, '');
  const fileTmp = mkdtempSync(join(tmpdir(), `nostr-bt-suite-${file}-`));
  chmodSync(fileTmp, 0o1777); // as /tmp is: tests run processes as other users, who must get through
  process.env.TMPDIR = fileTmp; // os.tmpdir() reads it on every call; children inherit it

  const linux = readStat('self') !== undefined;
  const family = new Family();
  let before = new Set<string>();
  let sampler: NodeJS.Timeout | undefined;

  if (linux) {
    beforeEach(() => {
      before = new Set(family.alive().map(key));
      // Sampling while the test runs is what catches a parent that dies before its child.
      sampler = setInterval(() => family.sample(), SAMPLE_MS).unref();
    });
    // The check is appended to the test's own `after` hooks from here: node:test runs afterEach
    // hooks before a test's `t.after` hooks, where tests stop what they started.
    afterEach((t) =>
      (t as TestContext).after(async () => {
        clearInterval(sampler);
        const outlived = () => family.alive().filter((p) => !before.has(key(p)));
        const deadline = Date.now() + GRACE_MS;
        let left = outlived();
        while (left.length > 0 && Date.now() < deadline) {
          await sleep(100);
          left = outlived();
        }
        if (left.length > 0) {
          const what = describe(left);
          killAll(left);
          throw new Error(`leak check: ${left.length} process(es) started by this test outlived it (now SIGKILLed): ${what}`);
        }
      }),
    );
  }

  process.on('exit', () => {
    const problems: string[] = [];
    if (linux) {
      const left = family.alive();
      if (left.length > 0) {
        problems.push(`${left.length} process(es) started by this file are still running (now SIGKILLed): ${describe(left)}`);
        killAll(left);
      }
    }
    let entries: string[] = [];
    try {
      entries = readdirSync(fileTmp);
    } catch {
      /* removed by the test itself */
    }
    if (entries.length > 0) problems.push(`left in its temp dir: ${entries.sort().join(', ')}`);
    rmSync(fileTmp, { recursive: true, force: true });
    if (problems.length > 0) {
      for (const p of problems) process.stderr.write(`leak check (${file}): ${p}\n`);
      process.exitCode = 1;
    }
  });
}
