// A newcomer's path through README.md. CI itself is the clean-clone install (`.ci/run`: fresh
// clone, `npm ci`, `npm test`); this test checks the rest without running the suite recursively:
// every command in the README's shell blocks names a script, file, bin or subcommand that exists
// (and files are tracked by git, so a clean clone has them), the demo runs, and the by-hand
// quick start runs as written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI_BIN, DIST } from './testkit/sidecar-process.js';
import { alive } from './testkit/proc-alive.js';

const run = promisify(execFile);
const ROOT = join(DIST, '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  bin: Record<string, string>;
};

/** The ```sh blocks, each as its command lines (comments and blank lines dropped). */
function shellBlocks(): string[][] {
  const blocks: string[][] = [];
  for (const m of README.matchAll(/```sh\n([\s\S]*?)```/g)) {
    blocks.push(
      m[1]!
        .split('\n')
        .map((l) => l.replace(/\s+#.*$/, '').trim())
        .filter((l) => l && !l.startsWith('#')),
    );
  }
  return blocks;
}

/** Paths git tracks (null when this is not a git checkout). */
function trackedFiles(): Map<string, string> | null {
  try {
    const out = execFileSync('git', ['ls-files', '-s'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const files = new Map<string, string>();
    for (const line of out.split('\n')) {
      const m = /^(\d+) \S+ \d+\t(.*)$/.exec(line);
      if (m) files.set(m[2]!, m[1]!);
    }
    return files;
  } catch {
    return null;
  }
}

test('README: every command names a real npm script, file, bin or subcommand; files and links are in a clean clone', async (t) => {
  const tracked = trackedFiles();
  if (!tracked) t.diagnostic('not a git checkout: tracked-file checks skipped');
  const cliHelp = (await run(process.execPath, [CLI_BIN, '--help'])).stdout;
  const cliCommands = new Set([...cliHelp.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!));
  const checked: string[] = [];
  const repoFile = (p: string, why: string) => {
    const rel = p.replace(/^\.\//, '').replace(/#.*$/, '');
    if (rel.startsWith('dist/')) {
      assert.ok(existsSync(join(ROOT, rel)), `${why}: ${rel} is built by npm run build`);
    } else if (!rel.startsWith('../')) {
      assert.ok(existsSync(join(ROOT, rel)), `${why}: ${rel} exists`);
      if (tracked)
        assert.ok(tracked.has(rel) || [...tracked.keys()].some((f) => f.startsWith(`${rel}/`)), `${why}: ${rel} is tracked by git`);
    }
    checked.push(rel);
  };

  for (const block of shellBlocks()) {
    for (const line of block) {
      for (const cmd of line.split(/&&|;|\|(?!\|)|&(?!&)/).map((c) => c.trim().replace(/^sudo /, ''))) {
        const words = cmd.split(/\s+/);
        if (words[0] === 'npm' && words[1] === 'run') assert.ok(pkg.scripts[words[2]!], `npm run ${words[2]} is a script in package.json`);
        if (words[0] === 'node' && words[1]) repoFile(words[1], `\`${cmd}\``);
        if (words[0]?.startsWith('nostr-bt')) {
          assert.ok(pkg.bin[words[0]], `${words[0]} is a bin in package.json`);
          repoFile(pkg.bin[words[0]]!, `bin ${words[0]}`);
          const sub = words.find((w, i) => i > 0 && !w.startsWith('-'));
          if (words[0] === 'nostr-bt' && sub) assert.ok(cliCommands.has(sub), `nostr-bt ${sub} is a CLI command`);
        }
        for (const m of cmd.matchAll(/(?:^|\s)((?:scripts|docs|test)\/[\w./-]+|strfry\.conf\.example)/g)) repoFile(m[1]!, `\`${cmd}\``);
        if (words[0]?.startsWith('scripts/') && tracked) assert.equal(tracked.get(words[0]), '100755', `${words[0]} is executable in git`);
      }
    }
  }
  // Relative links in the prose.
  for (const m of README.matchAll(/\]\((?!https?:|#)([^)\s]+)\)/g)) repoFile(m[1]!, `link ${m[1]}`);
  for (const must of [
    'scripts/install-systemd.sh',
    'scripts/systemd/nostr-bt-sidecar.service',
    'docs/config.md',
    'docs/protocol.md',
    'strfry.conf.example',
  ]) {
    assert.ok(checked.includes(must), `the README points at ${must}`);
  }
});

test('README quick start: `npm run demo` (after the build) ends with the resolve headline and what to run next', {
  timeout: 120_000,
}, async () => {
  assert.match(pkg.scripts.demo!, /node dist\/scripts\/demo\.js/);
  const { stdout } = await run(process.execPath, [join(DIST, 'scripts/demo.js')], { timeout: 100_000 });
  assert.match(
    stdout,
    /^OK: 15 strfry lines → 11 archived events → \d+ bundle torrents? → fetched by magnet through a local DHT of \d+ nodes → 11 events verified → nostr-bt resolve read \d+ events of npub1\w+… back from its DHT pointer, in [\d.]+ s\.$/m,
  );
  // The reader was the real CLI in a process of its own, and its events are listed with their source.
  const pid = /\$ nostr-bt resolve npub1\w+… --bridge [0-9a-f]{12}… --bootstrap <the local DHT> {3}\(pid (\d+), exit 0\)/.exec(stdout)?.[1];
  assert.ok(pid && Number(pid) !== process.pid, 'resolve ran as a separate process');
  const n = Number(/nostr-bt resolve read (\d+) events/.exec(stdout)![1]);
  assert.ok(n >= 1);
  assert.equal(
    [...stdout.matchAll(/^\[ *[\d.]+s\] {6}kind \d+ +\d{4}-\d\d-\d\dT[\d:]+Z {2}[0-9a-f]{12}… /gm)].length,
    n,
    'each resolved event is printed',
  );
  assert.match(stdout, /from bridge [0-9a-f]{16}…: pointer found, seq \d+, \d+ bundle\(s\) listed/);
  assert.match(stdout, /from bundle [0-9a-f]{40}: \d+ events, \d+ bytes of the author's file only \(through the swarm\)/);
  assert.match(stdout, new RegExp(`${n} events verified by the reader \\(id, signature, author\\) in [\\d.]+ s, sources: swarm ${n}`));
  const next = stdout.slice(stdout.indexOf('\nNext:\n'));
  assert.ok(next.length > 7, 'ends with what to run next');
  assert.match(next, /^ {2}npm test /m);
  assert.match(next, /^ {2}sudo scripts\/install-systemd\.sh /m);
});

/** The README's "Try the pipeline by hand" block, as written. */
function byHandBlock(): string {
  const heading = README.indexOf('Try the pipeline by hand');
  assert.ok(heading > 0);
  return /```sh\n([\s\S]*?)```/.exec(README.slice(heading))![1]!;
}

interface BlockRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** SIGKILLs what is left of the block's process group (call it in a finally). */
  killGroup: () => void;
}

/**
 * Runs a shell block under `bash -e` from the checkout, in a process group of its own, with no
 * NOSTR_BT_* variable of ours: only what the block sets. Resolves when bash exits.
 */
async function runBlock(block: string, tmp: string, timeoutMs: number): Promise<BlockRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
  for (const k of Object.keys(env)) if (k.startsWith('NOSTR_BT_')) delete env[k];
  const child = spawn('bash', ['-e', '-c', block], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  };
  const timer = setTimeout(killGroup, timeoutMs);
  // 'exit', not 'close': a process the block left behind would hold the pipes open.
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  await new Promise((r) => setTimeout(r, 100)); // the last output still in the pipes
  return { code, stdout, stderr, killGroup };
}

test('README by-hand block runs as written from the checkout: offline by its own config', { timeout: 90_000 }, async () => {
  const block = byHandBlock();
  assert.match(block, /^\[dht\]\nenabled = false\b/m, 'the block configures itself offline');
  assert.match(block, /^export NOSTR_BT_CONFIG=/m);
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-readme-'));
  let r: BlockRun | undefined;
  try {
    r = await runBlock(block, dir, 75_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^sidecar\s+up$/m);
    assert.match(r.stdout, /^events received\s+\d+$/m); // 15 once the spool is drained, should the plugin have spooled
    assert.match(r.stdout, /^spool files\s+\d+$/m);
    // Its config and data went to the scratch dir, and the sidecar ran without a DHT node.
    const [scratch] = readdirSync(dir).filter((f) => f.startsWith('tmp.'));
    assert.ok(scratch, `mktemp -d made the scratch dir in TMPDIR: ${readdirSync(dir).join(', ')}`);
    const ready = sidecarReady(r.stderr);
    assert.equal(ready.dataDir, join(dir, scratch, 'data'));
    assert.equal(ready.dhtPort, undefined, 'no DHT node: nothing joined the public DHT');
  } finally {
    r?.killGroup();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('README by-hand block: a command that fails after the sidecar started leaves no sidecar running', { timeout: 90_000 }, async () => {
  const block = byHandBlock();
  const at = block.indexOf('\n', block.indexOf('node dist/plugin/main.js'));
  assert.ok(at > 0);
  const failing = `${block.slice(0, at)}\nfalse  # a command that fails${block.slice(at)}`;
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-readme-'));
  let r: BlockRun | undefined;
  try {
    r = await runBlock(failing, dir, 75_000);
    assert.equal(r.code, 1, 'bash -e stops at the failing command');
    const { pid } = sidecarReady(r.stderr);
    // The block's own doing (its trap), before anything of ours kills its process group.
    const deadline = Date.now() + 30_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    assert.equal(alive(pid), false, `the sidecar (pid ${pid}) stopped when the block failed`);
  } finally {
    r?.killGroup();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The sidecar's "sidecar ready" log line (JSON on stderr). */
function sidecarReady(stderr: string): { pid: number; dataDir: string; dhtPort?: number } {
  const line = stderr.split('\n').find((l) => l.includes('"msg":"sidecar ready"'));
  assert.ok(line, `the sidecar got ready:\n${stderr}`);
  return JSON.parse(line) as { pid: number; dataDir: string; dhtPort?: number };
}
