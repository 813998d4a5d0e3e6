// Build step (`npm run build`): bundles webtorrent and its JavaScript dependencies, as installed
// here, into dist/vendor/webtorrent.js (loaded by sidecar/common/webtorrent.ts). The published
// package then needs none of webtorrent's dependency tree from the registry, only the packages
// left outside the bundle below, which are its own dependencies at versions that install from
// the npm registry alone (native code shipped as prebuilds inside registry packages).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT = join(ROOT, 'dist', 'vendor', 'webtorrent.js');

/**
 * Left out of the bundle, resolved from node_modules at run time:
 * - native addons, found through their own directory (node-gyp-build, require-addon);
 * - packages nostr-bt uses itself at the same version, so there is one copy (and one Wire class:
 *   sidecar/peer-limits.ts patches bittorrent-protocol's).
 */
export const EXTERNAL = [
  'node-datachannel',
  'utp-native',
  'fs-native-extensions',
  'bittorrent-dht',
  'bittorrent-protocol',
  'bencode',
  'memory-chunk-store',
  'ws',
];

async function main(): Promise<void> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
  const shipped = { ...pkg.dependencies, ...pkg.optionalDependencies };
  const missing = EXTERNAL.filter((name) => !(name in shipped));
  if (missing.length) throw new Error(`left out of the webtorrent bundle but not a dependency of nostr-bt: ${missing.join(', ')}`);
  await build({
    stdin: {
      contents: [
        "export { default } from 'webtorrent';",
        "export { default as Peer } from 'webtorrent/lib/peer.js';",
        "export { default as ConnPool } from 'webtorrent/lib/conn-pool.js';",
        // The gateway's WebSocket tracker (seeding/webrtc-tracker.ts): the same bittorrent-tracker
        // webtorrent's own client speaks to.
        "export { Server as TrackerServer } from 'bittorrent-tracker';",
      ].join('\n'),
      resolveDir: ROOT,
      sourcefile: 'webtorrent-vendor.js',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: OUT,
    external: EXTERNAL.flatMap((name) => [name, `${name}/*`]),
    // CommonJS parts call require(); in an ES module it has to be made.
    banner: { js: "import { createRequire as __vendorRequire } from 'node:module'; const require = __vendorRequire(import.meta.url);" },
    legalComments: 'inline',
    logLevel: 'warning',
  });
}

await main();
