// What the plugin can still use from a config file that does not load (a TOML syntax error, an
// unknown key, a bad value), and whether that file wraps an inner write policy (plugin.inner).
// Only the plugin uses this: the sidecar refuses a broken file (exit 2), but strfry must keep
// getting answers, and when nothing is wrapped there is nothing to enforce (plugin-config.ts).
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { configSchema } from '../sidecar/common/config.js';

/** The keys under [plugin] that start with "inner" and are not the command itself. */
const INNER_SETTINGS = new Set(['innertimeoutms', 'innerfailmode', 'innerfailmessage']);
/** Tables that stand in for unreadable header lines (repairToml): never reported as unknown keys. */
const UNREADABLE_TABLE = 'nostr-bt-unreadable-line-';
/** A config file is some 100 lines; past this many repairs the file is not a config worth reading. */
const MAX_REPAIRS = 200;

/**
 * A key an operator may have meant as `plugin.inner`: `inner` itself, a misspelling of it
 * (`iner`, `Inner`, `innner`), or an invented `inner...` key (`innerCommand`). A broken file with
 * such a key may wrap a policy, so the plugin fails closed on it rather than bypass the policy.
 */
export function looksLikeInner(key: string): boolean {
  const k = key.toLowerCase();
  const last = k.slice(k.lastIndexOf('.') + 1); // a quoted dotted key: "plugin.inner"
  if (last === 'inner') return true;
  if (INNER_SETTINGS.has(last)) return false;
  return last.startsWith('inner') || editDistance(last, 'inner') <= 2;
}

/** `inner` with any value but "" names a policy; a look-alike key does when it holds a command. */
function namesPolicy(key: string, value: unknown): boolean {
  if (!looksLikeInner(key)) return false;
  const exact = key.toLowerCase().endsWith('inner');
  return exact ? value !== '' : typeof value === 'string' && value.trim() !== '';
}

/** Whether a parsed (possibly invalid) config wraps an inner policy, under any table. */
export function parsedWrapsInner(value: unknown, depth = 0): boolean {
  if (depth > 8 || value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some((v) => parsedWrapsInner(v, depth + 1));
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (namesPolicy(k, v) || parsedWrapsInner(v, depth + 1)) return true;
  }
  return false;
}

/**
 * Whether the text of a file that is not valid TOML assigns a policy to an inner-like key
 * (`inner = "..."`, `plugin.inner = ...`, `{ inner = ... }`), anywhere outside a comment. Any value
 * but an empty string counts, even an unreadable one (`inner = /usr/bin/x`), so that a syntax error
 * on that very line still fails closed; `inner = ""` (as in docs/config.example.toml) does not.
 */
export function textWrapsInner(text: string): boolean {
  const assignment = /(?:^|[\s{,.])["']?([A-Za-z0-9_-]+)["']?\s*=\s*([^,{}]*)/g;
  for (const raw of text.split('\n')) {
    const line = withoutComment(raw);
    for (const m of line.matchAll(assignment)) {
      const key = m[1]!;
      const value = m[2]!.trim();
      if (!looksLikeInner(key)) continue;
      const empty = value === '""' || value === "''";
      const exact = key.toLowerCase() === 'inner';
      if (exact ? !empty : /^["']/.test(value) && !empty) return true;
    }
  }
  return false;
}

/** The line up to a `#` outside a quoted string. */
function withoutComment(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') return line.slice(0, i);
  }
  return line;
}

/**
 * Parses what can be parsed of a file that is not valid TOML: each line the parser stops at is
 * taken out and the rest parsed again. A broken table header becomes a table of its own (dropped
 * later as unknown), so the keys under it are not taken for keys of the table above; any other
 * broken line is blanked, so the keys after it stay in their table. When a line cannot be got
 * past (an unclosed array or string above it), the nearest line above is taken out too.
 */
export function repairToml(text: string): { raw: Record<string, unknown>; unreadableLines: number[] } {
  const lines = text.split('\n');
  const out: number[] = [];
  for (let attempt = 0; attempt <= Math.min(lines.length, MAX_REPAIRS); attempt++) {
    try {
      return { raw: parseToml(lines.join('\n')) as Record<string, unknown>, unreadableLines: out.sort((a, b) => a - b) };
    } catch (err) {
      let n = Math.min(err instanceof TomlError ? err.line : 0, lines.length);
      // Stopped again on a line already taken out, or on a blank or comment line: the cause is above.
      while (n >= 1 && (out.includes(n) || /^\s*(#.*)?\r?$/.test(lines[n - 1]!))) n--;
      if (n < 1) break;
      out.push(n);
      lines[n - 1] = /^\s*\[/.test(lines[n - 1]!) ? `[${UNREADABLE_TABLE}${n}]` : '';
    }
  }
  return { raw: {}, unreadableLines: out.sort((a, b) => a - b) };
}

/**
 * The keys of a parsed config that the schema accepts, each on its own (a bad value loses only
 * its key, not its table), and the names of the others. The result loads with loadConfig.
 */
export function keepValidKeys(raw: Record<string, unknown>): { kept: Record<string, unknown>; ignored: string[] } {
  const shape = configSchema.shape as Record<string, z.ZodType>;
  const kept: Record<string, unknown> = {};
  const ignored: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (key.startsWith(UNREADABLE_TABLE)) continue;
    const schema = Object.hasOwn(shape, key) ? shape[key]! : undefined;
    if (schema === undefined) {
      ignored.push(key);
    } else if (isTable(value) && schema.safeParse({}).success) {
      const table: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        if (schema.safeParse({ [k]: v }).success) table[k] = v;
        else ignored.push(`${key}.${k}`);
      }
      kept[key] = table;
    } else if (schema.safeParse(value).success) {
      kept[key] = value;
    } else {
      ignored.push(key);
    }
  }
  return { kept, ignored };
}

function isTable(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
