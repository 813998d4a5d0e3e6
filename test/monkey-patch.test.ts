// Every monkey patch goes through sidecar/common/monkey-patch.ts: a patched member that is missing
// or of the wrong type is refused with a message naming the package, its version and the member,
// nothing is replaced, and the sidecar (exit 5) and the reader (exit 3) stop at start-up with that
// one message. The patched packages are the versions package.json pins exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PatchTargetError, installedVersion, patchableFunction, patchableObject, wrapMethod } from '../sidecar/common/monkey-patch.js';
import { patchable } from '../sidecar/dht/patch.js';
import { CLI_BIN, DIST, SIDECAR_BIN, makeWorkspace } from './testkit/sidecar-process.js';

const ROOT = join(DIST, '..');
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
// webtorrent is a devDependency: the build bundles it into dist/vendor/ (sidecar/common/webtorrent.ts).
const pkgJson = { dependencies: { ...manifest.devDependencies, ...manifest.dependencies } };
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version: string; dependencies?: Record<string, string> }>;
};

test('a missing or mistyped member: PatchTargetError names package, version and member, and nothing is replaced', () => {
  const owner = { pkg: 'bittorrent-protocol', object: 'Wire.prototype' };
  const fake: Record<string, unknown> = { _onCancel: () => 1, state: 'not an object' };
  const missing = (() => {
    try {
      wrapMethod(fake, '_onRequest', owner, (f) => f);
    } catch (err) {
      return err;
    }
    return assert.fail('a missing member must throw');
  })();
  assert.ok(missing instanceof PatchTargetError);
  assert.equal(
    missing.message,
    `cannot patch bittorrent-protocol ${pkgJson.dependencies['bittorrent-protocol']}: Wire.prototype._onRequest is missing (expected a function; ` +
      'bittorrent-protocol internals changed: install the versions package.json pins, see docs/operations.md#patched-dependencies)',
  );
  assert.equal(missing.version, pkgJson.dependencies['bittorrent-protocol'], 'the installed version, read from its package.json');
  assert.equal(missing.member, '_onRequest');
  assert.ok(!('_onRequest' in fake), 'nothing was added');

  assert.throws(() => patchableObject(fake, 'state', { pkg: 'webtorrent', object: 'ConnPool', version: '9.9.9' }), {
    name: 'PatchTargetError',
    message: /^cannot patch webtorrent 9\.9\.9: ConnPool\.state is a string \(expected an object;/,
  });
  assert.throws(() => patchableFunction(fake, 'state', owner), /Wire\.prototype\.state is a string \(expected a function;/);
  assert.throws(() => patchableObject({ x: null }, 'x', owner), /\.x is null \(expected an object;/);

  // A present member is wrapped, and the wrapper gets the original.
  let calls = 0;
  wrapMethod<() => number>(
    fake,
    '_onCancel',
    owner,
    (original) =>
      function (this: unknown) {
        calls++;
        return original.call(this) + 1;
      },
  );
  assert.equal((fake._onCancel as () => number)(), 2);
  assert.equal(calls, 1);
});

test('DHT patches name the package each object comes from, transitive ones with their installed version', () => {
  const rpc = lock.packages['node_modules/k-rpc']!.version;
  assert.throws(() => patchable({}, '_addNode', 'k-rpc RPC'), {
    message: new RegExp(`^cannot patch k-rpc ${rpc.replace(/\./g, '\\.')}: RPC\\._addNode is missing`),
  });
  assert.throws(() => patchable({}, 'send', 'dgram Socket'), {
    message: new RegExp(`^cannot patch node ${process.versions.node}: dgram\\.Socket\\.send is missing`),
  });
  assert.throws(() => patchable({}, 'x', 'some-package X'), /does not start with a known package/);
});

test('the patched packages are pinned: direct ones exactly in package.json, transitive ones by the lockfile under the pinned parent', () => {
  for (const name of ['webtorrent', 'bittorrent-dht', 'bittorrent-protocol']) {
    const pinned = pkgJson.dependencies[name];
    assert.match(pinned ?? '', /^\d+\.\d+\.\d+$/, `${name} pinned exactly in package.json (got ${pinned})`);
    assert.equal(lock.packages[`node_modules/${name}`]?.version, pinned, `${name}: the lockfile has the pinned version`);
    assert.equal(installedVersion(name), pinned, `${name}: the pinned version is installed`);
  }
  // k-rpc, k-rpc-socket and k-bucket come only through bittorrent-dht (caret ranges there): the
  // lockfile fixes them; one copy each, none nested elsewhere.
  for (const [name, parent] of [
    ['k-rpc', 'bittorrent-dht'],
    ['k-bucket', 'bittorrent-dht'],
    ['k-rpc-socket', 'k-rpc'],
  ] as const) {
    const copies = Object.keys(lock.packages).filter((p) => p.endsWith(`node_modules/${name}`));
    assert.deepEqual(copies, [`node_modules/${name}`], `${name}: one copy in the lockfile`);
    assert.ok(lock.packages[`node_modules/${parent}`]?.dependencies?.[name], `${name} is a dependency of ${parent}`);
    assert.equal(
      installedVersion(name, parent),
      lock.packages[`node_modules/${name}`]!.version,
      `${name}: the locked version is installed`,
    );
  }
});

/** Runs a command with a module preloaded that deletes one patched member; its exit code and stderr (bounded). */
async function runWithout(
  member: { pkg: string; export: string; name: string },
  args: string[],
  ms = 60_000,
): Promise<{ code: number | null; stderr: string }> {
  const url = import.meta.resolve(member.pkg);
  const preload = `data:text/javascript,${encodeURIComponent(`import * as m from ${JSON.stringify(url)}; delete m[${JSON.stringify(member.export)}].prototype[${JSON.stringify(member.name)}];`)}`;
  const p = spawn(process.execPath, ['--import', preload, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  const timer = setTimeout(() => p.kill('SIGKILL'), ms);
  const code = await exited;
  clearTimeout(timer);
  assert.notEqual(p.signalCode, 'SIGKILL', `still running after ${ms} ms: ${stderr.slice(-2000)}`);
  return { code, stderr };
}

test('the sidecar stops at start-up, exit 5, with one line naming package, version and member', { timeout: 90_000 }, async () => {
  const ws = makeWorkspace({ dht: { enabled: false } });
  try {
    const r = await runWithout({ pkg: 'bittorrent-protocol', export: 'default', name: '_onRequest' }, [
      SIDECAR_BIN,
      '--config',
      ws.configPath,
    ]);
    assert.equal(r.code, 5, r.stderr);
    const fatal = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string; exitCode?: number })
      .filter((l) => l.level >= 60);
    assert.equal(fatal.length, 1, r.stderr);
    assert.equal(fatal[0]!.exitCode, 5);
    assert.match(
      fatal[0]!.msg,
      new RegExp(
        `^cannot patch bittorrent-protocol ${pkgJson.dependencies['bittorrent-protocol']!.replace(/\./g, '\\.')}: Wire\\.prototype\\._onRequest is missing`,
      ),
    );
    assert.doesNotMatch(r.stderr, /"stack"/, "an operator's error, not a bug: no stack trace");
  } finally {
    ws.cleanup();
  }
});

test('the reader stops at once, exit 3, with the message and no stack trace', { timeout: 90_000 }, async () => {
  const r = await runWithout({ pkg: 'bittorrent-dht', export: 'default', name: '_onput' }, [
    CLI_BIN,
    'resolve',
    'ab'.repeat(32),
    '--bridge',
    'cd'.repeat(32),
    '--bootstrap',
    '127.0.0.1:9',
    '--bind',
    '127.0.0.1',
  ]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(
      `^nostr-bt resolve: cannot patch bittorrent-dht ${pkgJson.dependencies['bittorrent-dht']!.replace(/\./g, '\\.')}: DHT\\._onput is missing`,
    ),
  );
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});
