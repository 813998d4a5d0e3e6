#!/usr/bin/env node
// nostr-bt-sidecar: the daemon. Starts with no config at all (data in ./nostr-bt-data).
import { Command } from 'commander';
import { loadConfig, ConfigError } from './config.js';
import { createLogger } from './log.js';
import { Sidecar } from './sidecar.js';

const STOP_TIMEOUT_MS = 15_000;

const program = new Command('nostr-bt-sidecar')
  .description('nostr-bt sidecar: indexes what the strfry plugin forwards and archives it into BitTorrent')
  .option('-c, --config <file>', 'config file (default: $NOSTR_BT_CONFIG, then /etc/nostr-bt/config.toml if present)')
  .option('-d, --data-dir <dir>', 'data directory (overrides dataDir in the config)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace')
  .parse();

const flags = program.opts<{ config?: string; dataDir?: string; logLevel?: string }>();
let config;
try {
  config = loadConfig({ configPath: flags.config, dataDir: flags.dataDir, overrides: flags.logLevel ? { log: { level: flags.logLevel } } : undefined });
} catch (err) {
  process.stderr.write(`nostr-bt-sidecar: ${err instanceof ConfigError ? err.message : String(err)}\n`);
  process.exit(2);
}
const log = createLogger('nostr-bt-sidecar', config.log.level);
const sidecar = new Sidecar(config, log);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'stopping');
  const timer = setTimeout(() => {
    log.error({ timeoutMs: STOP_TIMEOUT_MS }, 'graceful stop took too long; exiting');
    process.exit(1);
  }, STOP_TIMEOUT_MS);
  try {
    await sidecar.stop();
    clearTimeout(timer);
    process.exit(0);
  } catch (err) {
    log.error({ err }, 'error while stopping');
    process.exit(1);
  }
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));

try {
  await sidecar.start();
} catch (err) {
  log.fatal({ err }, 'sidecar failed to start');
  process.exit(1);
}
