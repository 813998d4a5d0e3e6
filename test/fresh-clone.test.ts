// A user's fresh clone has nothing beside it: no file of the project may reach outside the
// repository for its inputs (the strfry captures live in test/fixtures/, see its README).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DIST, FIXTURES } from './testkit/sidecar-process.js';

const ROOT = join(DIST, '..');
// Built from parts so this file does not match itself.
const FORBIDDEN = [['..', 'shared'].join('/'), ['', 'work', 'shared'].join('/')];
const SKIP_DIRS = new Set(['.git', 'node_modules', 'dist']);

/** Tracked files when this is a git checkout, else every file under the root but build output. */
function projectFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\0')
      .filter((f) => f.length > 0);
  } catch {
    const out: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) {
          if (!SKIP_DIRS.has(name)) walk(path);
        } else out.push(relative(ROOT, path));
      }
    };
    walk(ROOT);
    return out;
  }
}

test('fresh clone: no file of the project names the folder beside the checkout', () => {
  const hits: string[] = [];
  const files = projectFiles();
  assert.ok(files.length > 50, `found the project's files (${files.length})`);
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(join(ROOT, file), 'latin1');
    } catch {
      continue; // listed by git but deleted in the work tree
    }
    for (const bad of FORBIDDEN) if (text.includes(bad)) hits.push(`${file}: ${bad}`);
  }
  assert.deepEqual(hits, []);
});

test('fresh clone: the strfry captures are in the repository', () => {
  for (const [name, lines] of [
    ['strfry-plugin-input.jsonl', 15],
    ['strfry-export.jsonl', 13],
  ] as const) {
    const text = readFileSync(join(FIXTURES, name), 'utf8');
    assert.equal(text.trim().split('\n').length, lines, `${name} holds ${lines} lines`);
    assert.ok(FIXTURES.startsWith(ROOT), 'fixtures are inside the checkout');
  }
});
