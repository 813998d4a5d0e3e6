// The config the plugin runs on, and what it does when the file does not load.
//
// strfry rejects every write the plugin rejects, so a broken config file must not take the relay's
// writes down when there is nothing to enforce:
// - no plugin.inner in the file: accept every event, and archive it as usual (sidecar socket, else
//   spool) with every setting that can still be read from the file (the configured spool, socket
//   and forwardSourceTypes, unless those keys are the broken ones), logged loudly on stderr;
// - plugin.inner set (or there is no telling): reject every event, as a policy must never be
//   silently bypassed.
// "There is no telling" is decided on the side of the policy (config-salvage.ts): the file cannot be
// read at all; or it parses and an inner-like key (inner, a misspelling of it such as `iner`, an
// invented `innerCommand`) under any table holds something other than ""; or it is not valid TOML
// and a line outside comments assigns anything but "" to such a key. `inner = ""`, as in
// docs/config.example.toml, wraps nothing.
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { ConfigError, DEFAULT_CONFIG_PATH, findConfigPath, loadConfig, type Config, type LoadOptions } from '../sidecar/common/config.js';
import type { Logger } from '../sidecar/common/log.js';
import { keepValidKeys, parsedWrapsInner, repairToml, textWrapsInner } from './config-salvage.js';

export type PluginConfig =
  | { mode: 'normal'; config: Config }
  /** The file does not load and wraps no policy: accept everything, archive with what was read. */
  | { mode: 'accept-all'; config: Config; error: string; ignored: string[] }
  /** The file does not load and may wrap a policy: reject everything. */
  | { mode: 'reject-all'; error: string; reason: string };

export function loadPluginConfig(opts: LoadOptions): PluginConfig {
  try {
    return { mode: 'normal', config: loadConfig(opts) };
  } catch (err) {
    return salvage(opts, err instanceof ConfigError ? err.message : String(err));
  }
}

function salvage(opts: LoadOptions, error: string): PluginConfig {
  const path = findConfigPath(opts);
  let parsed: Record<string, unknown> = {};
  const ignored: string[] = [];
  if (path !== null) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return {
        mode: 'reject-all',
        error,
        reason: 'the config file cannot be read, so there is no telling whether it wraps a write policy (plugin.inner)',
      };
    }
    let wraps: boolean;
    try {
      parsed = parseToml(text) as Record<string, unknown>;
      wraps = parsedWrapsInner(parsed);
    } catch {
      const repaired = repairToml(text);
      parsed = repaired.raw;
      ignored.push(...repaired.unreadableLines.map((n) => `line ${n}`));
      wraps = textWrapsInner(text) || parsedWrapsInner(parsed);
    }
    if (wraps) return { mode: 'reject-all', error, reason: 'it wraps a write policy (plugin.inner), which must not be bypassed' };
    const valid = keepValidKeys(parsed);
    parsed = valid.kept;
    ignored.push(...valid.ignored);
  }
  // What could be read; failing that (it cannot, short of a bug), the defaults for that file.
  for (const attempt of [parsed, {}]) {
    try {
      return { mode: 'accept-all', config: loadConfig({ ...opts, parsed: attempt }), error, ignored };
    } catch {
      /* next */
    }
  }
  return { mode: 'reject-all', error, reason: 'not even the built-in defaults load' };
}

/** One line on stderr at start: what the plugin runs on, loudly when that is not the file as written. */
export function logStart(started: PluginConfig, log: Logger): void {
  if (started.mode === 'reject-all') {
    log.fatal(
      { err: started.error, reason: started.reason },
      `nostr-bt config invalid: rejecting every event until it is fixed, because ${started.reason}`,
    );
    return;
  }
  const c = started.config;
  const where = {
    config: c.configPath,
    dataDir: c.dataDir,
    socket: c.socket.path,
    spoolDir: c.spool.dir,
    spoolMaxBytes: c.spool.maxBytes,
    forwardSourceTypes: c.plugin.forwardSourceTypes,
  };
  if (started.mode === 'accept-all') {
    log.error(
      { err: started.error, ignored: started.ignored, ...where },
      `nostr-bt config invalid: ACCEPTING EVERY EVENT (no plugin.inner is configured, so there is no policy to enforce) and archiving it through ${c.socket.path}, else the spool ${c.spool.dir}; ignored: ${started.ignored.join(', ') || '(nothing readable)'}. Fix the file: the sidecar refuses it too`,
    );
  } else if (c.configPath === null) {
    log.warn(
      { ...where, cwd: process.cwd(), inner: null },
      `no config file (no --config, NOSTR_BT_CONFIG unset, no ${DEFAULT_CONFIG_PATH}): running on the built-in defaults; accepted events go to ${c.socket.path}, else the spool ${c.spool.dir}, which only a sidecar with the same data directory drains`,
    );
  } else {
    log.info({ ...where, inner: c.plugin.inner !== '' }, 'plugin started');
  }
}
