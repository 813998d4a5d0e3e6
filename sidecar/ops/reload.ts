// SIGHUP: which config changes the running sidecar can take, and which need a restart.
import type { Config } from '../common/config.js';

/** Keys applied in place on SIGHUP; every other change waits for a restart. */
export const RELOADABLE_KEYS: readonly string[] = [
  'log.level',
  'policy.allowKinds',
  'policy.denyKinds',
  'policy.honorDeletions',
  'policy.honorVanish',
  'policy.dropExpired',
  'policy.expirySweepIntervalMs',
  'policy.relayUrl',
  'ingest.verifySignatures',
  'ingest.maxEventBytes',
  'ingest.batchMaxDelayMs',
  'dht.putsPerSecond',
  'dht.maxInFlightPuts',
  'service.heapGrowthPercent',
];

/** Keys derived from others (their change shows up under the key they come from). */
const DERIVED = new Set(['configPath', 'indexDir', 'quarantineDir']);

export interface ConfigChanges {
  reloadable: string[];
  restartNeeded: string[];
}

/** The dotted keys whose value differs between the running config and a newly loaded one. */
export function diffConfig(running: Config, next: Config): ConfigChanges {
  const changed: string[] = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (isPlainObject(a) && isPlainObject(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
        const p = path ? `${path}.${k}` : k;
        if (!DERIVED.has(p)) walk(a[k], b[k], p);
      }
    } else if (JSON.stringify(a) !== JSON.stringify(b)) changed.push(path);
  };
  walk(running, next, '');
  return {
    reloadable: changed.filter((k) => RELOADABLE_KEYS.includes(k)),
    restartNeeded: changed.filter((k) => !RELOADABLE_KEYS.includes(k)),
  };
}

/** Copies the given keys' values from `next` into `running` (in place: components read it live). */
export function applyKeys(running: Config, next: Config, keys: readonly string[]): void {
  for (const key of keys) {
    const [section, name] = key.split('.') as [string, string];
    const dst = (running as unknown as Record<string, Record<string, unknown>>)[section]!;
    dst[name] = (next as unknown as Record<string, Record<string, unknown>>)[section]![name];
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
