// Build step (`npm run build`): the browser reader (scripts/reader/browser/) type-checked with the
// DOM library and bundled by esbuild into dist/browser/ (reader.js, reader.css, index.html), which
// the gateway serves at `/` (sidecar/http/page-routes.ts). The page uses webtorrent's own browser
// build; node:crypto's `hash` (the event id check of sidecar/formats/nostr-event.ts) maps to
// @noble/hashes.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SRC = join(ROOT, 'scripts', 'reader', 'browser');
export const OUT_DIR = join(ROOT, 'dist', 'browser');

async function main(): Promise<void> {
  mkdirSync(OUT_DIR, { recursive: true });
  await build({
    entryPoints: [join(SRC, 'main.ts')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: ['chrome110', 'firefox115', 'safari16'],
    outfile: join(OUT_DIR, 'reader.js'),
    minify: true,
    legalComments: 'linked',
    logLevel: 'warning',
    plugins: [
      {
        name: 'node-crypto-hash',
        setup(b) {
          b.onResolve({ filter: /^node:crypto$/ }, () => ({ path: join(SRC, 'node-hash.ts') }));
        },
      },
    ],
  });
  for (const f of ['index.html', 'reader.css']) copyFileSync(join(SRC, f), join(OUT_DIR, f));
}

await main();
