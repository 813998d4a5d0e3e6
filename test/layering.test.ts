// The house stands in pipeline order (docs/architecture.md): a stage folder of sidecar/ imports only
// the folders before it, the plugin and the reader only the shared folders, and no module imports
// itself back through others. Read from the sources' import statements (type-only ones included:
// a type cycle is still a tangle for a reader of the code).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { DIST } from './testkit/sidecar-process.js';

const ROOT = join(DIST, '..');

/** The sidecar's folders in pipeline order; a folder may import itself and those before it. */
export const STAGES = [
  'common',
  'formats',
  'dht',
  'policy',
  'judge',
  'index',
  'ingest',
  'bundles',
  'seeding',
  'media',
  'publishing',
  'discovery',
  'mirror',
  'backfill',
  'ops',
  'http',
] as const;
/** Folders anything outside the sidecar (plugin, reader, scripts) may build on. */
const SHARED = new Set(['common', 'formats', 'dht']);

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = posix.join(dir, name);
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...sources(rel));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

const FILES = ['sidecar', 'plugin', 'scripts'].flatMap(sources);

/** Relative imports of one source file, as repository paths of .ts files. */
function importsOf(file: string): string[] {
  const src = readFileSync(join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)\.js'/g)) {
    out.push(posix.normalize(posix.join(posix.dirname(file), m[1]!)) + '.ts');
  }
  return out;
}

/** Where a file stands: a stage's index, or what kind of outsider it is. */
function placeOf(file: string): { stage: number } | { outsider: 'plugin' | 'reader' | 'script' | 'sidecar-top' } {
  const m = /^sidecar\/([^/]+)\//.exec(file);
  if (m) {
    const i = (STAGES as readonly string[]).indexOf(m[1]!);
    assert.ok(i >= 0 || m[1] === 'types', `${file}: folder sidecar/${m[1]}/ is not in the pipeline order of this test (STAGES)`);
    return { stage: i };
  }
  if (file.startsWith('sidecar/')) return { outsider: 'sidecar-top' };
  if (file.startsWith('plugin/')) return { outsider: 'plugin' };
  if (file.startsWith('scripts/reader/')) return { outsider: 'reader' };
  return { outsider: 'script' };
}

test('every sidecar folder imports only itself and the folders before it in the pipeline', () => {
  const wrong: string[] = [];
  for (const file of FILES) {
    const from = placeOf(file);
    if (!('stage' in from)) continue;
    for (const target of importsOf(file)) {
      const to = placeOf(target);
      if ('stage' in to && to.stage > from.stage) wrong.push(`${file} → ${target}`);
      if ('outsider' in to) wrong.push(`${file} → ${target} (a stage importing ${to.outsider})`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('the plugin and the reader import only the shared folders of the sidecar, never a stage', () => {
  const wrong: string[] = [];
  for (const file of FILES) {
    const from = placeOf(file);
    if (!('outsider' in from) || (from.outsider !== 'plugin' && from.outsider !== 'reader')) continue;
    for (const target of importsOf(file)) {
      const m = /^sidecar\/([^/]+)\//.exec(target);
      if (target.startsWith('sidecar/') && !(m && SHARED.has(m[1]!))) wrong.push(`${file} → ${target}`);
      if (from.outsider === 'plugin' && target.startsWith('scripts/')) wrong.push(`${file} → ${target}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('no import cycles among the modules', () => {
  const graph = new Map(FILES.map((f) => [f, importsOf(f)]));
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') cycles.push([...stack.slice(stack.indexOf(m)), m].join(' → '));
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const f of FILES) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

test('every relative import names a file that exists (the checks above read real edges)', () => {
  const missing: string[] = [];
  let edges = 0;
  for (const file of FILES) {
    for (const target of importsOf(file)) {
      edges++;
      try {
        statSync(join(ROOT, target));
      } catch {
        // A .d.ts companion (types for an untyped module) also counts.
        try {
          statSync(join(ROOT, target.replace(/\.ts$/, '.d.ts')));
        } catch {
          missing.push(`${file} → ${relative(ROOT, join(ROOT, dirname(target)))}/${posix.basename(target)}`);
        }
      }
    }
  }
  assert.ok(edges > 200, `only ${edges} imports read: the pattern no longer matches the sources`);
  assert.deepEqual(missing, []);
});
