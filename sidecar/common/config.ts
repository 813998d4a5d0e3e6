// One config file for every command (plugin, sidecar, CLI, scripts). TOML, validated with zod.
// Lookup: --config flag > NOSTR_BT_CONFIG > /etc/nostr-bt/config.toml (if present) > defaults.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, resolve, isAbsolute } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { isIP } from 'node:net';
import { z } from 'zod';
import { closestKey } from './closest-key.js';
import ipaddr from 'ipaddr.js';

export const DEFAULT_CONFIG_PATH = '/etc/nostr-bt/config.toml';

const octalString = z.string().regex(/^0?[0-7]{3}$/, 'an octal file mode such as "0660"');
const fromOctal = (s: string) => parseInt(s, 8);

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'host:port, for example "127.0.0.1:9477"');

function isHttpBase(u: string): boolean {
  try {
    const url = new URL(u);
    return (
      (url.protocol === 'https:' || url.protocol === 'http:') &&
      url.search === '' &&
      url.hash === '' &&
      !u.includes('?') &&
      !u.includes('#')
    );
  } catch {
    return false;
  }
}

function isCidr(s: string): boolean {
  try {
    ipaddr.parseCIDR(s);
    return true;
  } catch {
    return false;
  }
}

export const configSchema = z
  .object({
    dataDir: z.string().min(1).default('./nostr-bt-data'),
    socket: z
      .object({
        path: z.string().min(1).optional(),
        mode: octalString.default('0660').transform(fromOctal),
        group: z.string().optional(),
      })
      .strict()
      .prefault({}),
    spool: z
      .object({
        dir: z.string().min(1).optional(),
        maxBytes: z
          .number()
          .int()
          .positive()
          .default(1024 ** 3),
        fsyncIntervalMs: z.number().int().min(10).max(60_000).default(1000),
        rotateBytes: z
          .number()
          .int()
          .positive()
          .default(64 * 1024 ** 2),
        scanIntervalMs: z.number().int().min(50).max(600_000).default(1000),
      })
      .strict()
      .prefault({}),
    plugin: z
      .object({
        forwardSourceTypes: z.array(z.string()).default(['*']),
        inner: z.string().default(''),
        innerTimeoutMs: z.number().int().min(10).max(60_000).default(5000),
        innerFailMode: z.enum(['reject', 'accept']).default('reject'),
        innerFailMessage: z.string().default('error: write policy unavailable, try again later'),
        maxUnacked: z.number().int().positive().default(20_000),
        logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
        forwardDelayMs: z.number().int().min(0).max(1000).default(20),
      })
      .strict()
      .prefault({}),
    ingest: z
      .object({
        verifySignatures: z.enum(['untrusted', 'always', 'never']).default('untrusted'),
        batchMaxEvents: z.number().int().min(1).max(100_000).default(2000),
        batchMaxDelayMs: z.number().int().min(0).max(10_000).default(250),
        maxEventBytes: z
          .number()
          .int()
          .min(1024)
          .default(512 * 1024),
        maxLineBytes: z
          .number()
          .int()
          .min(1024)
          .default(8 * 1024 * 1024),
        quarantineMaxBytes: z
          .number()
          .int()
          .min(0)
          .default(256 * 1024 ** 2),
        judgeThreads: z.number().int().min(0).max(4).default(1),
        judgeInlineMaxLines: z.number().int().min(0).max(100_000).default(1000),
      })
      .strict()
      .prefault({}),
    policy: z
      .object({
        allowKinds: z.array(z.number().int().min(0)).default([]),
        denyKinds: z.array(z.number().int().min(0)).default([]),
        honorDeletions: z.boolean().default(true),
        honorVanish: z.boolean().default(true),
        dropExpired: z.boolean().default(true),
        expirySweepIntervalMs: z.number().int().min(100).default(60_000),
        relayUrl: z.string().default(''),
      })
      .strict()
      .prefault({}),
    bundle: z
      .object({
        dir: z.string().min(1).optional(),
        windowSeconds: z.number().int().min(1).max(86_400).default(60),
        windowMaxBytes: z
          .number()
          .int()
          .min(1024)
          .default(64 * 1024 ** 2),
        maxBundleBytes: z
          .number()
          .int()
          .min(1024)
          .default(4 * 1024 ** 3),
        maxActiveTorrents: z.number().int().min(10).default(1000),
        rewriteIntervalSeconds: z.number().int().min(1).max(600).default(60),
      })
      .strict()
      .prefault({}),
    bittorrent: z
      .object({
        port: z.number().int().min(0).max(65535).default(6881),
        utp: z.boolean().default(true),
        maxConns: z.number().int().min(1).default(200),
      })
      .strict()
      .prefault({}),
    // Media archiving (sidecar/media/): one key per field of MediaOptions, same names and defaults.
    media: z
      .object({
        enabled: z.boolean().default(false),
        kinds: z.array(z.number().int().min(0)).default([]),
        maxRefsPerEvent: z.number().int().min(1).max(1000).default(32),
        maxUrlsPerBlob: z.number().int().min(1).max(64).default(8),
        maxUrlBytes: z.number().int().min(64).max(65_536).default(2048),
        maxBlobBytes: z
          .number()
          .int()
          .min(1)
          .default(100 * 1024 ** 2),
        maxRedirects: z.number().int().min(0).max(20).default(3),
        timeoutMs: z.number().int().min(100).default(120_000),
        idleTimeoutMs: z.number().int().min(100).default(15_000),
        allowLoopback: z.boolean().default(false),
        allowPrivate: z.boolean().default(false),
        allowAddresses: z.array(z.string().refine(isCidr, 'an address range such as "10.1.2.3/32" or "fd12::/64"')).default([]),
        allowHosts: z.array(z.string().min(1)).default([]),
        denyHosts: z.array(z.string().min(1)).default([]),
        mimeAllow: z
          .array(
            z
              .string()
              .regex(/^(\*|[a-z0-9][a-z0-9.+-]*)\/(\*|[a-z0-9][a-z0-9.+-]*)$/i, 'a media type such as "image/png", "image/*" or "*/*"'),
          )
          .default([]),
        maxQueued: z.number().int().min(1).default(10_000),
        maxQueuedBytes: z
          .number()
          .int()
          .min(1024)
          .default(8 * 1024 ** 2),
        maxQueuedPerAuthor: z.number().int().min(1).default(100),
        concurrency: z.number().int().min(1).max(64).default(4),
        bytesPerSecond: z.number().int().min(0).default(0),
        maxTotalBytes: z
          .number()
          .int()
          .min(1)
          .default(10 * 1024 ** 3),
        maxBytesPerAuthor: z
          .number()
          .int()
          .min(1)
          .default(512 * 1024 ** 2),
      })
      .strict()
      .prefault({}),
    dht: z
      .object({
        enabled: z.boolean().default(true),
        port: z.number().int().min(0).max(65535).default(6881),
        host: z.string().default('0.0.0.0'),
        putsPerSecond: z.number().min(0.1).max(1000).default(40),
        maxInFlightPuts: z.number().int().min(1).max(256).default(128),
        concurrency: z.number().int().min(1).max(2048).default(512),
        maxPacketsPerSecondPerNode: z.number().min(1).max(1000).default(5),
        maxNodesPerIp: z.number().int().min(0).max(64).default(1),
        republishIntervalSeconds: z.number().int().min(60).max(7200).default(3600),
        bootstrap: z
          .array(hostPort)
          .default(['router.bittorrent.com:6881', 'router.utorrent.com:6881', 'dht.transmissionbt.com:6881', 'dht.libtorrent.org:25401']),
      })
      .strict()
      .prefault({}),
    bridge: z
      .object({
        nostrKeyFile: z.string().default(''),
      })
      .strict()
      .prefault({}),
    reconcile: z
      .object({
        strfry: z.string().default(''),
        strfryConfig: z.string().default(''),
        intervalSeconds: z
          .number()
          .int()
          .min(1)
          .max(7 * 86_400)
          .default(3600),
        marginSeconds: z.number().int().min(0).default(3600),
        verifySignatures: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    status: z
      .object({
        listen: hostPort.default('127.0.0.1:9477'),
      })
      .strict()
      .prefault({}),
    gateway: z
      .object({
        listen: z
          .string()
          .regex(/^$|^[^\s:]+:\d{1,5}$/, 'host:port, for example "127.0.0.1:8089", or "" (off)')
          .default(''),
        publicUrl: z
          .string()
          .refine(
            (u) => u === '' || isHttpBase(u),
            'an http(s) URL with no query or fragment, for example "https://archive.example.org", or ""',
          )
          .default('')
          .transform((u) => u.replace(/\/+$/, '')),
        maxConnections: z.number().int().min(1).max(1_000_000).default(2000),
        maxConnectionsPerIp: z.number().int().min(1).max(100_000).default(64),
        headersTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
        requestTimeoutMs: z.number().int().min(100).max(3_600_000).default(30_000),
        idleTimeoutMs: z.number().int().min(100).max(600_000).default(5_000),
        requestsPerSecondPerIp: z.number().min(0.1).max(1_000_000).default(200),
        burstPerIp: z.number().int().min(1).max(1_000_000).default(400),
        trustedProxies: z.array(z.string().refine((a) => isIP(a) !== 0, 'an IP address, for example "127.0.0.1"')).default([]),
        dhtLookupsPerSecond: z.number().min(0.1).max(10_000).default(10),
        dhtLookupTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
        remoteCacheSeconds: z.number().int().min(0).max(7200).default(60),
        remoteCacheEntries: z.number().int().min(0).max(1_000_000).default(10_000),
        webrtc: z.boolean().default(true),
        webrtcMaxPeers: z.number().int().min(1).max(10_000).default(50),
        webrtcMaxPeersPerBundle: z.number().int().min(1).max(10_000).default(4),
        stallTimeoutMs: z.number().int().min(1000).max(3_600_000).default(60_000),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
    service: z
      .object({
        stopTimeoutSeconds: z.number().min(1).max(3600).default(20),
        heapGrowthPercent: z.number().int().min(0).max(400).default(100),
        nice: z.number().int().min(0).max(19).default(10),
      })
      .strict()
      .prefault({}),
    // Bridge discovery (sidecar/discovery/, docs/protocol.md §10): the beacon and its DHT announce.
    discovery: z
      .object({
        enabled: z.boolean().default(true),
        listen: hostPort.default('0.0.0.0:6882'),
        announceIntervalSeconds: z.number().int().min(1).max(3600).default(900),
        maxConnections: z.number().int().min(1).max(10_000).default(64),
        handshakeTimeoutMs: z.number().int().min(100).max(60_000).default(10_000),
      })
      .strict()
      .prefault({}),
    catalog: z
      .object({
        enabled: z.boolean().default(true),
        intervalSeconds: z.number().int().min(1).max(86_400).default(300),
      })
      .strict()
      .prefault({}),
    mirror: z
      .object({
        bridges: z
          .array(
            z
              .string()
              .regex(
                /^([0-9a-fA-F]{64}|[ybndrfg8ejkmcpqxot1uwisza345h769]{52})$/,
                'a bridge key: 64 hex or 52 z-base-32 characters (`nostr-bt key` on that bridge)',
              ),
          )
          .default([]),
        maxBytesPerBridge: z
          .number()
          .int()
          .min(1)
          .default(50 * 1024 ** 3),
        maxBundlesPerBridge: z.number().int().min(1).max(1_000_000).default(5000),
        maxCatalogBytes: z
          .number()
          .int()
          .min(1024)
          .default(256 * 1024 ** 2),
        downloadBytesPerSecond: z.number().int().min(0).default(0),
        concurrency: z.number().int().min(1).max(64).default(4),
        pollIntervalSeconds: z.number().int().min(1).max(86_400).default(300),
        republishIntervalSeconds: z.number().int().min(1).max(7200).default(3600),
        putsPerSecond: z.number().min(0.1).max(1000).default(20),
        bundleTimeoutSeconds: z.number().int().min(1).max(86_400).default(3600),
        webSeeds: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;

/** The validated config with every path resolved to an absolute one. */
export interface Config extends RawConfig {
  configPath: string | null;
  dataDir: string;
  socket: RawConfig['socket'] & { path: string };
  spool: RawConfig['spool'] & { dir: string };
  bundle: RawConfig['bundle'] & { dir: string };
  indexDir: string;
  quarantineDir: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface LoadOptions {
  configPath?: string;
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Extra settings merged over the file (tests, flags). */
  overrides?: Record<string, unknown>;
  /** The config file's content, already parsed: the file is not read again (the plugin salvaging a broken file). */
  parsed?: Record<string, unknown>;
}

/** The config file the lookup picks (absolute), or null: no file, built-in defaults. */
export function findConfigPath(opts: LoadOptions = {}): string | null {
  const env = opts.env ?? process.env;
  const configPath = opts.configPath ?? env.NOSTR_BT_CONFIG ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : null);
  return configPath === null ? null : resolve(opts.cwd ?? process.cwd(), configPath);
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const configPath = findConfigPath(opts);

  let raw: Record<string, unknown> = opts.parsed ?? {};
  if (configPath !== null && opts.parsed === undefined) {
    let text: string;
    try {
      text = readFileSync(configPath, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${configPath}: ${(err as Error).message}`);
    }
    try {
      raw = parseToml(text) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`config file ${configPath} is not valid TOML: ${(err as Error).message}`);
    }
  }
  if (opts.overrides) raw = deepMerge(raw, opts.overrides);
  // The environment reaches processes started in different directories (strfry runs the plugin
  // in its own), so a relative path there would name a different directory in each: refused.
  // A --data-dir flag is typed in a shell: relative to that shell's directory, as usual.
  const envDataDir = opts.dataDir ? undefined : env.NOSTR_BT_DATA_DIR;
  if (envDataDir && !isAbsolute(envDataDir)) {
    throw new ConfigError(
      `NOSTR_BT_DATA_DIR must be an absolute path (got ${JSON.stringify(envDataDir)}): the plugin and the sidecar run in different working directories, so a relative one would give each its own data directory`,
    );
  }
  const dataDirOverride = opts.dataDir || envDataDir;
  if (dataDirOverride) raw = { ...raw, dataDir: dataDirOverride };

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const where = configPath ?? '(defaults)';
    const lines = parsed.error.issues.flatMap((i) => {
      if (i.code === 'unrecognized_keys') return i.keys.map((k) => `  ${unknownKey(i.path.map(String), k)}`);
      const key = i.path.length ? i.path.join('.') : '(top level)';
      return [`  ${key}: ${i.message}`];
    });
    throw new ConfigError(`invalid config ${where}:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  // Relative paths in a config file are relative to that file (whoever reads it, from wherever);
  // a --data-dir flag, to the cwd; with no file and no override, ./nostr-bt-data is in the cwd.
  const fileBase = configPath !== null ? dirname(configPath) : cwd;
  const dataDir = resolve(dataDirOverride ? cwd : fileBase, c.dataDir);
  const under = (p: string | undefined, fallback: string) =>
    p === undefined ? resolve(dataDir, fallback) : isAbsolute(p) ? p : resolve(dataDir, p);
  return {
    ...c,
    configPath,
    dataDir,
    socket: { ...c.socket, path: under(c.socket.path, 'ingest.sock') },
    spool: { ...c.spool, dir: under(c.spool.dir, 'spool') },
    bundle: { ...c.bundle, dir: under(c.bundle.dir, 'bundles') },
    bridge: { ...c.bridge, nostrKeyFile: c.bridge.nostrKeyFile && resolve(fileBase, c.bridge.nostrKeyFile) },
    reconcile: { ...c.reconcile, ...reconcilePaths(c.reconcile, fileBase) },
    indexDir: resolve(dataDir, 'index'),
    quarantineDir: resolve(dataDir, 'quarantine'),
  };
}

/** `dht.enabeld: unknown key; did you mean dht.enabled?` (or the section where such a key lives). */
function unknownKey(section: string[], key: string): string {
  const props = (z.toJSONSchema(configSchema, { io: 'input' }) as { properties: Record<string, { properties?: Record<string, unknown> }> })
    .properties;
  const keysOf = (path: string[]) => Object.keys((path.length ? props[path[0]!]?.properties : props) ?? {});
  const name = [...section, key].join('.');
  const near = closestKey(key, keysOf(section));
  if (near) return `${name}: unknown key; did you mean ${[...section, near].join('.')}?`;
  const homes = Object.keys(props).filter((s) => s !== section[0] && keysOf([s]).includes(key));
  if (homes.length) return `${name}: unknown key; ${key} is a key of ${homes.map((s) => `[${s}]`).join(' and ')}`;
  return `${name}: unknown key`;
}

/** A strfry given as a path (with a slash) or a config file: relative to the config file. */
function reconcilePaths(r: RawConfig['reconcile'], base: string): { strfry: string; strfryConfig: string } {
  return {
    strfry: r.strfry.includes('/') ? resolve(base, r.strfry) : r.strfry,
    strfryConfig: r.strfryConfig ? resolve(base, r.strfryConfig) : '',
  };
}

export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? deepMerge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}
