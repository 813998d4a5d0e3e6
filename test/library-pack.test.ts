// nostr-bt as a client developer gets it: the package packed as `npm publish` would, installed
// into an empty project by npm from the registry alone (no overrides, no install flags), imported
// as 'nostr-bt' by a TypeScript consumer that is type-checked against the shipped declarations,
// then run against a real bridge (sidecar child process) on a loopback DHT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { canonicalJson, type NostrEvent } from '../sidecar/formats/nostr-event.js';
import { DIST } from './testkit/sidecar-process.js';
import { startLocalDht } from './testkit/local-dht.js';
import { startBridge, type Bridge } from './testkit/reader-rig.js';
import { signer } from './testkit/events.js';

const execFileP = promisify(execFile);
const ROOT = join(DIST, '..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** npm for a consumer: its logs in the temp dir (the default cache is reused to keep it fast). */
function npmEnv(dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    npm_config_logs_dir: join(dir, 'npm-logs'),
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
  // Nothing of this project's own npm run (its overrides, its prefix) may leak into the consumer's.
  for (const k of Object.keys(env)) if (k.startsWith('npm_package_') || k === 'npm_config_prefix' || k === 'INIT_CWD') delete env[k];
  return env;
}

interface PackFile {
  path: string;
  size: number;
}

/** The consumer a client developer would write, with every part of the API it touches typed. */
const CONSUMER = `
import { createReader, ReaderError, type Reader, type VerifiedEvent } from 'nostr-bt';
import { canonicalJson, verifyPointerItem, authorSalt } from 'nostr-bt/formats';

const [bootstrap, bridge, author] = process.argv.slice(2) as [string, string, string];

async function badInputCode(): Promise<string> {
  try {
    await createReader({ bootstrap: 'not a node' });
    return 'no error';
  } catch (err) {
    return err instanceof ReaderError ? err.code : String(err);
  }
}

const reader: Reader = await createReader({ bootstrap: [bootstrap], bind: '127.0.0.1', limits: { bundleTimeoutMs: 30_000, swarmTimeoutMs: 60_000 } });
try {
  const resolution = reader.resolve(author, { bridges: [bridge] });
  const streamed: VerifiedEvent[] = [];
  for await (const item of resolution) streamed.push(item);
  const { events, summary } = await resolution.result;
  const pointer = await reader.lookupPointer(bridge, author, { timeoutMs: 20_000 });
  const infoHash = pointer.status === 'found' ? pointer.pointer.infoHashes[0] : undefined;
  const file = infoHash ? await reader.fetchAuthorFile(infoHash, author, { timeoutMs: 30_000 }) : null;
  // A salt is what the codecs give without any network; a forged item fails the check.
  const forged = verifyPointerItem({ v: { x: 1 }, k: Buffer.from(bridge, 'hex'), seq: 1, sig: new Uint8Array(64) }, Buffer.from(bridge, 'hex'), authorSalt(author));
  console.log(JSON.stringify({
    streamed: streamed.map(({ event, origin }) => ({ id: event.id, origin })),
    events: events.map((e) => canonicalJson(e)),
    found: summary.found,
    swarmComplete: summary.swarmComplete,
    pointer: pointer.status === 'found' ? { infoHashes: pointer.pointer.infoHashes, complete: pointer.pointer.complete } : pointer.status,
    file: file && (file.ok ? { ok: true, text: file.bytes.toString('utf8'), events: file.events.map((e) => e.id), peers: file.peers } : { ok: false, reason: file.reason }),
    forged,
    badInput: await badInputCode(),
  }));
} finally {
  await reader.close();
}
`;

test('library: npm pack ships the library and the bins, no tests, benches or source maps; prepack builds', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
    exports: Record<string, unknown>;
  };
  assert.match(pkg.scripts.prepack ?? '', /npm run build/, 'prepack builds, so a clean clone packs dist/');
  assert.ok(pkg.exports['.'] && pkg.exports['./formats']);
});

test('library: an empty project installs the packed tarball from the npm registry alone, type-checks a consumer and resolves an author on a loopback DHT', {
  timeout: 480_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-consumer-'));
  const dht = await startLocalDht(12);
  let bridge: Bridge | null = null;
  try {
    // 1. Pack as `npm publish` would (the build already ran: `npm test` builds first).
    const packDir = join(dir, 'pack');
    mkdirSync(packDir);
    const { stdout: packJson } = await execFileP(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], {
      cwd: ROOT,
      env: npmEnv(dir),
      timeout: 120_000,
      maxBuffer: 64 << 20,
    });
    const [packed] = JSON.parse(packJson) as [{ filename: string; size: number; entryCount: number; files: PackFile[] }];
    const paths = packed.files.map((f) => f.path);
    for (const bad of [
      /^dist\/test\//,
      /^dist\/bench\//,
      /^test\//,
      /^bench\//,
      /^\.ci\//,
      /\.map$/,
      /^scripts\/.*\.ts$/,
      /^sidecar\/.*\.ts$/,
    ]) {
      assert.deepEqual(
        paths.filter((p) => bad.test(p)),
        [],
        `nothing matching ${bad} is shipped`,
      );
    }
    for (const need of [
      'dist/scripts/reader/index.js',
      'dist/scripts/reader/index.d.ts',
      'dist/scripts/reader/formats.d.ts',
      'dist/vendor/webtorrent.js',
      'dist/browser/reader.js',
      'dist/browser/index.html',
      'dist/sidecar/main.js',
      'dist/scripts/cli.js',
      'docs/reader.md',
      'docs/protocol.md',
    ]) {
      assert.ok(paths.includes(need), `${need} is shipped`);
    }

    // 2. An empty project installs it: plain `npm install <tarball>`, nothing of its own.
    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }, null, 2),
    );
    try {
      await execFileP(NPM, ['install', join(packDir, packed.filename)], {
        cwd: app,
        env: npmEnv(dir),
        timeout: 300_000,
        maxBuffer: 64 << 20,
      });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      assert.fail(`npm install of the tarball failed:\n${e.stderr ?? ''}\n${e.stdout ?? ''}`);
    }
    const installed = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(installed.overrides, undefined, 'the consumer has no overrides');

    // 3. The consumer type-checks against the shipped declarations (strict, library checks on).
    writeFileSync(join(app, 'consumer.ts'), CONSUMER);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: false,
          noEmitOnError: true,
          // @types/node from this checkout: the consumer installs nothing but nostr-bt.
          typeRoots: [join(ROOT, 'node_modules/@types')],
          types: ['node'],
          outDir: '.',
        },
        files: ['consumer.ts'],
      }),
    );
    try {
      await execFileP(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(app, 'tsconfig.json')], {
        cwd: app,
        timeout: 120_000,
      });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      assert.fail(`the consumer does not type-check against the shipped declarations:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }

    // 4. A bridge archives an author's events; the consumer resolves them knowing only the
    //    bootstrap address, the bridge key and the author.
    bridge = await startBridge(dht.bootstrap);
    const alice = await signer();
    const archived: NostrEvent[] = [
      alice.sign({ kind: 0, created_at: 1_795_500_000, content: '{"name":"alice"}' }),
      ...Array.from({ length: 6 }, (_, i) =>
        alice.sign({ kind: 1, created_at: 1_795_500_001 + i, content: `note ${i}`, tags: [['t', 'library']] }),
      ),
    ];
    await bridge.feed(archived);
    await bridge.waitPublished(archived.length, [alice.pubkey]);
    const { stdout } = await execFileP(process.execPath, [join(app, 'consumer.js'), dht.bootstrap[0]!, bridge.key, alice.pubkey], {
      cwd: app,
      timeout: 150_000,
      maxBuffer: 64 << 20,
    });
    const out = JSON.parse(stdout.trim().split('\n').pop()!) as {
      streamed: { id: string; origin: { from: string; infoHash?: string; bridges?: string[]; peers?: string[] } }[];
      events: string[];
      found: boolean;
      swarmComplete: boolean;
      pointer: { infoHashes: string[]; complete: boolean } | string;
      file: { ok: boolean; text?: string; events?: string[]; peers?: string[] } | null;
      forged: unknown;
      badInput: string;
    };

    const newestFirst = [...archived].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? -1 : 1));
    assert.deepEqual(
      out.events,
      newestFirst.map((e) => canonicalJson(e)),
      'the merged result is exactly what was archived, as stored, newest first',
    );
    assert.ok(out.found && out.swarmComplete);
    assert.deepEqual(out.streamed.map((s) => s.id).sort(), archived.map((e) => e.id).sort(), 'each archived event streamed once');
    assert.ok(typeof out.pointer === 'object' && out.pointer.complete, `pointer found and complete: ${JSON.stringify(out.pointer)}`);
    const pointer = out.pointer as { infoHashes: string[] };
    for (const s of out.streamed) {
      assert.equal(s.origin.from, 'swarm');
      assert.deepEqual(s.origin.bridges, [bridge.key], 'the bridge whose pointer lists the bundle');
      assert.ok(pointer.infoHashes.includes(s.origin.infoHash!), 'a bundle the pointer lists');
    }
    assert.ok(
      out.streamed.some((s) => (s.origin.peers ?? []).some((p) => p.startsWith('127.0.0.1:'))),
      'the peer that sent the pieces is named',
    );
    assert.ok(out.file?.ok, `the author's file fetched from a bundle: ${JSON.stringify(out.file)}`);
    const fileIds = new Set(out.file!.events!);
    assert.ok(fileIds.size > 0 && [...fileIds].every((id) => archived.some((e) => e.id === id)), 'its events are the archived ones');
    const byId = new Map(archived.map((e) => [e.id, e]));
    assert.equal(
      out.file!.text,
      out.file!.events!.map((id) => canonicalJson(byId.get(id)!) + '\n').join(''),
      'its bytes are the stored lines, every one verified',
    );
    assert.equal(out.forged, 'bad-signature', 'a forged pointer item is caught by the codec');
    assert.equal(out.badInput, 'BAD_INPUT', 'bad input is a typed error with a code');

    // 5. The example of docs/reader.md runs as written and prints the archived events.
    const doc = readFileSync(join(ROOT, 'docs/reader.md'), 'utf8');
    const example = /```js\n(\/\/ example\.mjs[^\n]*\n[\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(example, 'docs/reader.md has the example');
    writeFileSync(join(app, 'example.mjs'), example);
    const ex = await execFileP(process.execPath, [join(app, 'example.mjs'), alice.pubkey, bridge.key, dht.bootstrap[0]!], {
      cwd: app,
      timeout: 150_000,
      maxBuffer: 64 << 20,
    });
    assert.equal(
      ex.stdout,
      newestFirst.map((e) => canonicalJson(e) + '\n').join(''),
      `the example prints the archived events (stderr: ${ex.stderr})`,
    );
  } finally {
    await bridge?.stop();
    await dht.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
