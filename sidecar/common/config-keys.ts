// Every config key with its default and allowed values, read from the zod schema itself, so
// docs/config.md can be checked against the code (test/ops-config-doc.test.ts).
import { z } from 'zod';
import { configSchema } from './config.js';

export interface ConfigKey {
  key: string;
  /** The default as a TOML value, or "(unset)". */
  default: string;
  /** What the schema accepts, in words. */
  allowed: string;
}

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  pattern?: string;
}

export function configKeys(): ConfigKey[] {
  const root = z.toJSONSchema(configSchema, { io: 'input' }) as JsonSchema;
  const out: ConfigKey[] = [];
  for (const [name, s] of Object.entries(root.properties ?? {})) {
    if (s.type === 'object') {
      for (const [k, v] of Object.entries(s.properties ?? {})) out.push(describe(`${name}.${k}`, v));
    } else out.push(describe(name, s));
  }
  return out;
}

function describe(key: string, s: JsonSchema): ConfigKey {
  return { key, default: s.default === undefined ? '(unset)' : toml(s.default), allowed: allowed(s) };
}

function toml(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(toml).join(', ')}]`;
  return JSON.stringify(v);
}

function allowed(s: JsonSchema): string {
  if (s.enum) return s.enum.map((e) => JSON.stringify(e)).join(' or ');
  switch (s.type) {
    case 'boolean':
      return 'true or false';
    case 'array':
      return `list of ${allowed(s.items ?? {})}`;
    case 'integer':
    case 'number':
      return `${s.type === 'integer' ? 'integer' : 'number'}${range(s)}`;
    case 'string':
      if (s.pattern === '^0?[0-7]{3}$') return 'octal file mode string';
      if (s.pattern?.includes(':')) return 'host:port string';
      return s.minLength ? 'non-empty string' : 'string';
    default:
      return 'any';
  }
}

function range(s: JsonSchema): string {
  const max = s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER ? s.maximum : undefined;
  if (s.exclusiveMinimum !== undefined) return max === undefined ? ` > ${s.exclusiveMinimum}` : ` > ${s.exclusiveMinimum}, ≤ ${max}`;
  if (s.minimum !== undefined && max !== undefined) return ` ${s.minimum} to ${max}`;
  if (s.minimum !== undefined) return ` ≥ ${s.minimum}`;
  if (max !== undefined) return ` ≤ ${max}`;
  return '';
}
