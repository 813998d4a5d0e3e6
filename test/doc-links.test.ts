// Links into the docs resolve: every `file.md#anchor` in docs/*.md and README.md, every
// `docs/<file>.md#anchor` and `docs/protocol.md §N` in the code's comments, names a file that
// exists and a heading it has (anchors as GitHub makes them from headings).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CODE_DIRS = ['sidecar', 'plugin', 'scripts', 'test', 'bench'];

/** GitHub's heading anchor: lowercase, punctuation dropped (not `-` or `_`), spaces to `-`. */
export function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

const anchorCache = new Map<string, Set<string>>();

/** The anchors of a markdown file's headings (outside fenced code), duplicates numbered as GitHub does. */
function anchorsOf(file: string): Set<string> {
  let set = anchorCache.get(file);
  if (set) return set;
  set = new Set();
  const seen = new Map<string, number>();
  let fence: string | null = null;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const f = /^\s*(```|~~~)/.exec(line);
    if (f) {
      if (fence === null) fence = f[1]!;
      else if (f[1] === fence) fence = null;
      continue;
    }
    if (fence !== null) continue;
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = slug(h[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    set.add(n === 0 ? base : `${base}-${n}`);
  }
  anchorCache.set(file, set);
  return set;
}

function filesUnder(dir: string, ext: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p, ext));
    else if (name.endsWith(ext)) out.push(p);
  }
  return out;
}

/** What is wrong with a link to `target#anchor` (target resolved already), or null. */
function problem(target: string, anchor: string | undefined): string | null {
  if (!existsSync(target)) return `${relative(ROOT, target)} does not exist`;
  if (anchor === undefined || !target.endsWith('.md')) return null;
  return anchorsOf(target).has(decodeURIComponent(anchor).toLowerCase()) ? null : `${relative(ROOT, target)} has no heading #${anchor}`;
}

test('slug: GitHub anchors of headings', () => {
  assert.equal(slug('9. HTTP gateway'), '9-http-gateway');
  assert.equal(slug('`[gateway]` — read-only HTTP gateway'), 'gateway--read-only-http-gateway');
  assert.equal(slug('HTTP gateway behind a TLS proxy'), 'http-gateway-behind-a-tls-proxy');
  assert.equal(slug('Web seed: `GET /webseed/<infohash>/…`'), 'web-seed-get-webseedinfohash');
});

test('every markdown link into a markdown file of the repository names an existing heading', () => {
  const bad: string[] = [];
  let checked = 0;
  for (const file of [join(ROOT, 'README.md'), ...filesUnder(join(ROOT, 'docs'), '.md')]) {
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const link = m[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:
      const [path, anchor] = link.split('#', 2) as [string, string | undefined];
      const target = path === '' ? file : resolve(dirname(file), path);
      if (!target.startsWith(ROOT)) continue;
      checked++;
      const p = problem(target, anchor);
      if (p) bad.push(`${relative(ROOT, file)}: (${link}): ${p}`);
    }
  }
  assert.ok(checked > 20, `${checked} links checked`);
  assert.deepEqual(bad, []);
});

test('every docs/<file>.md#anchor and docs/protocol.md §N in code comments points at a heading that exists', () => {
  const bad: string[] = [];
  let checked = 0;
  const protocol = join(ROOT, 'docs/protocol.md');
  const sections = new Set([...readFileSync(protocol, 'utf8').matchAll(/^## (\d+)\. /gm)].map((m) => m[1]!));
  for (const dir of CODE_DIRS) {
    for (const file of filesUnder(join(ROOT, dir), '.ts')) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/\b(docs\/[\w.-]+\.md|README\.md)#([\w-]+)/g)) {
        checked++;
        const p = problem(join(ROOT, m[1]!), m[2]!);
        if (p) bad.push(`${relative(ROOT, file)}: ${m[0]}: ${p}`);
      }
      for (const m of text.matchAll(/docs\/protocol\.md,? §(\d+)/g)) {
        checked++;
        if (!sections.has(m[1]!)) bad.push(`${relative(ROOT, file)}: ${m[0]}: docs/protocol.md has no "## ${m[1]}." section`);
      }
    }
  }
  assert.ok(checked > 10, `${checked} references checked`);
  assert.deepEqual(bad, []);
});
