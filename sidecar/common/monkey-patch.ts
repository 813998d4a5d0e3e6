// The one way nostr-bt patches (or relies on) the internals of the packages it depends on:
// webtorrent (Peer, ConnPool), bittorrent-protocol (Wire), bittorrent-dht (DHT) and the packages
// bittorrent-dht is built on (k-rpc, k-rpc-socket, k-bucket). Those members are not their public
// API, so an upgrade may rename or restructure one; a patch that silently stops applying would
// leave the seeder or the DHT node unbounded (the limits are security measures). Every member is
// checked to exist with the expected type before it is read or replaced, and a missing one stops
// the process at start-up with a PatchTargetError naming the package, its installed version and
// the member (the sidecar exits 5, the reader 3; docs/operations.md, Patched dependencies).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// `any` is the honest type for the untyped library internals this file patches or drives (biome.json turns noExplicitAny off here).
export type AnyFunction = (this: any, ...args: any[]) => any;

/** Whose member is patched: a package and the object in it. */
export interface PatchOwner {
  /** npm package name, or `node` for Node's own modules. */
  pkg: string;
  /** The patched object as the message names it, e.g. `ConnPool.prototype`. */
  object: string;
  /** The package's version when it is known from the package itself (else looked up on failure). */
  version?: string;
  /** The package that depends on `pkg`, for a transitive dependency npm may nest inside it. */
  via?: string;
}

export class PatchTargetError extends Error {
  constructor(
    readonly owner: PatchOwner,
    readonly member: string,
    readonly expected: 'function' | 'object',
    found: string,
  ) {
    const version = owner.version ?? (owner.pkg === 'node' ? process.versions.node : installedVersion(owner.pkg, owner.via));
    super(
      `cannot patch ${owner.pkg} ${version}: ${owner.object}.${member} is ${found} (expected a${expected === 'object' ? 'n' : ''} ${expected}; ` +
        `${owner.pkg} internals changed: install the versions package.json pins, see docs/operations.md#patched-dependencies)`,
    );
    this.name = 'PatchTargetError';
    this.version = version;
  }

  /** The version of `owner.pkg` the message names. */
  readonly version: string;
}

function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  return `a ${typeof v}`;
}

/** `obj[name]`, which must be a function (not bound: call it with `.call(this, …)`). */
export function patchableFunction<F extends AnyFunction = AnyFunction>(obj: object, name: string, owner: PatchOwner): F {
  const f = (obj as Record<string, unknown>)[name];
  if (typeof f !== 'function') throw new PatchTargetError(owner, name, 'function', describe(f));
  return f as F;
}

/** `obj[name]`, which must be a non-null object. */
export function patchableObject(obj: object, name: string, owner: PatchOwner): any {
  const o = (obj as Record<string, unknown>)[name];
  if (o === null || typeof o !== 'object') throw new PatchTargetError(owner, name, 'object', describe(o));
  return o;
}

/**
 * Replaces the method `obj[name]` by `wrap(original)`, after checking the original is a function
 * (nothing is replaced when it is not).
 */
export function wrapMethod<F extends AnyFunction = AnyFunction>(
  obj: object,
  name: string,
  owner: PatchOwner,
  wrap: (original: F) => F,
): void {
  const original = patchableFunction<F>(obj, name, owner);
  (obj as Record<string, unknown>)[name] = wrap(original);
}

const versions = new Map<string, string>();

/**
 * The installed version of `pkg` as Node would load it from this module: `node_modules/<pkg>` here
 * or in a parent directory (read from its package.json, as some packages' `exports` do not expose
 * it). `via` names the package that depends on it, for a transitive dependency npm may nest inside
 * it. `unknown` when it is not found (e.g. bundled into dist/vendor/).
 */
export function installedVersion(pkg: string, via?: string): string {
  const key = `${via ?? ''}>${pkg}`;
  let v = versions.get(key);
  if (v === undefined) {
    const from = via === undefined ? dirname(fileURLToPath(import.meta.url)) : packageDir(via, dirname(fileURLToPath(import.meta.url)));
    const dir = from === undefined ? undefined : packageDir(pkg, from);
    v = 'unknown';
    if (dir !== undefined) {
      try {
        const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown }).version;
        if (typeof version === 'string') v = version;
      } catch {
        /* unreadable: reported as unknown */
      }
    }
    versions.set(key, v);
  }
  return v;
}

function packageDir(pkg: string, from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', pkg);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}
