// A newcomer's path through README.md. CI itself is the clean-clone install (`.ci/run`: fresh
// clone, `npm ci`, `npm test`); this test checks the rest without running the suite recursively:
// every command in the README's shell blocks names a script, file, bin or subcommand that exists
// (and files are tracked by git, so a clean clone has them), the demo runs, and the by-hand
// quick start runs as written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'smol-toml';
import { CLI_BIN, DIST, LOOPBACK_DEFAULTS } from './support/sidecar-process.js';

const run = promisify(execFile);
const ROOT = join(DIST, '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; bin: Record<string, string> };

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
      if (tracked) assert.ok(tracked.has(rel) || [...tracked.keys()].some((f) => f.startsWith(`${rel}/`)), `${why}: ${rel} is tracked by git`);
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
  for (const must of ['scripts/install-systemd.sh', 'scripts/systemd/nostr-bt-sidecar.service', 'docs/config.md', 'docs/protocol.md', 'strfry.conf.example']) {
    assert.ok(checked.includes(must), `the README points at ${must}`);
  }
});

test('README quick start: `npm run demo` (after the build) ends with OK', { timeout: 120_000 }, async () => {
  assert.match(pkg.scripts.demo!, /node dist\/scripts\/demo\.js/);
  const { stdout } = await run(process.execPath, [join(DIST, 'scripts/demo.js')], { timeout: 100_000 });
  assert.match(stdout, /^OK: 15 strfry lines → 11 archived events/m);
});

test('README by-hand block runs as written from the checkout (loopback-only config via NOSTR_BT_CONFIG)', { timeout: 60_000 }, async () => {
  const heading = README.indexOf('Try the pipeline by hand');
  assert.ok(heading > 0);
  const block = /```sh\n([\s\S]*?)```/.exec(README.slice(heading))![1]!;
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-readme-'));
  try {
    const configPath = join(dir, 'config.toml');
    writeFileSync(configPath, stringify({ ...LOOPBACK_DEFAULTS }));
    const { stdout } = await run('bash', ['-e', '-c', block], {
      cwd: ROOT,
      env: { ...process.env, NOSTR_BT_CONFIG: configPath, TMPDIR: dir },
      timeout: 45_000,
    });
    assert.match(stdout, /^sidecar\s+up$/m);
    assert.match(stdout, /^events received\s+\d+$/m);
    assert.match(stdout, /^spool files\s+\d+$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
