// The bridges a reader has seen, kept between runs ($XDG_CACHE_HOME/nostr-bt/bridges.json, else
// ~/.cache/nostr-bt/bridges.json): discovery tries them first, those that had a pointer for an
// author before them. Bounded (the most recently useful entries are kept); a missing, unreadable
// or corrupt file is an empty cache (reported, and replaced on the next save). Saved atomically.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export const BRIDGE_CACHE_MAX = 256;

export interface CachedBridge {
  /** ed25519 key, 64 hex. */
  k: string;
  g?: string;
  /** Beacon addresses seen (at most 4). */
  a: string[];
  /** Unix ms first and last seen (beacon answer or pointer found). */
  first: number;
  last: number;
  /** Resolves in which this bridge had the author's pointer. */
  hits: number;
}

export function defaultBridgeCachePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'nostr-bt', 'bridges.json');
}

const HEX64 = /^[0-9a-f]{64}$/;

function valid(e: unknown): e is CachedBridge {
  if (!e || typeof e !== 'object') return false;
  const c = e as Record<string, unknown>;
  return (
    typeof c.k === 'string' &&
    HEX64.test(c.k) &&
    (c.g === undefined || (typeof c.g === 'string' && c.g.length <= 512)) &&
    Array.isArray(c.a) &&
    c.a.length <= 4 &&
    c.a.every((x) => typeof x === 'string' && x.length <= 64) &&
    Number.isSafeInteger(c.first) &&
    Number.isSafeInteger(c.last) &&
    Number.isSafeInteger(c.hits) &&
    (c.hits as number) >= 0
  );
}

export class BridgeCache {
  private readonly entries = new Map<string, CachedBridge>();
  private constructor(
    readonly path: string | null,
    /** Why the file (or part of it) could not be used (null: read fine, or there was none). */
    public loadError: string | null,
  ) {}

  /** A cache backed by `path` (null: in memory only, nothing read or written). */
  static load(path: string | null): BridgeCache {
    if (path === null) return new BridgeCache(null, null);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return new BridgeCache(path, code === 'ENOENT' ? null : `cannot read ${path}: ${code ?? String(err)}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return new BridgeCache(path, `${path} is not JSON: ignored (it is rewritten on the next save)`);
    }
    const list = (parsed as { v?: unknown; bridges?: unknown })?.bridges;
    if ((parsed as { v?: unknown })?.v !== 1 || !Array.isArray(list))
      return new BridgeCache(path, `${path} is not a bridge cache of version 1: ignored`);
    const cache = new BridgeCache(path, null);
    let bad = 0;
    for (const e of list.slice(0, BRIDGE_CACHE_MAX * 4)) {
      if (valid(e)) cache.entries.set(e.k, { k: e.k, ...(e.g ? { g: e.g } : {}), a: [...e.a], first: e.first, last: e.last, hits: e.hits });
      else bad++;
    }
    cache.trim();
    if (bad > 0) cache.loadError = `${path}: ${bad} malformed entries ignored`;
    return cache;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Best first: bridges that had pointers (most hits, then most recent), then the rest by recency. */
  ranked(): CachedBridge[] {
    return [...this.entries.values()].sort((x, y) => (y.hits > 0 ? 1 : 0) - (x.hits > 0 ? 1 : 0) || y.hits - x.hits || y.last - x.last);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** A beacon answered with this key. */
  saw(key: string, address?: string, gateway?: string, now = Date.now()): void {
    const e = this.entries.get(key) ?? { k: key, a: [], first: now, last: now, hits: 0 };
    e.last = now;
    if (gateway) e.g = gateway;
    if (address && !e.a.includes(address)) e.a = [address, ...e.a].slice(0, 4);
    this.entries.set(key, e);
  }

  /** This bridge had the author's pointer. */
  hit(key: string, now = Date.now()): void {
    this.saw(key, undefined, undefined, now);
    this.entries.get(key)!.hits++;
  }

  private trim(): void {
    if (this.entries.size <= BRIDGE_CACHE_MAX) return;
    const keep = this.ranked().slice(0, BRIDGE_CACHE_MAX);
    this.entries.clear();
    for (const e of keep) this.entries.set(e.k, e);
  }

  /** Writes the cache (temp file + rename); failures are returned, not thrown. */
  save(): string | null {
    if (this.path === null) return null;
    this.trim();
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      writeFileSync(tmp, JSON.stringify({ v: 1, bridges: this.ranked() }) + '\n', { mode: 0o600 });
      renameSync(tmp, this.path);
      return null;
    } catch (err) {
      return `cannot write ${this.path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
    }
  }
}
