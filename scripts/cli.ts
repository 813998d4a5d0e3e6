#!/usr/bin/env node
// nostr-bt: the operator CLI.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadConfig, ConfigError, type Config } from '../sidecar/config.js';
import { Store } from '../sidecar/store.js';
import { measureSpool, statusFromStore, type Status } from '../sidecar/status.js';
import { loadIdentity, zbase32, KeyFileError } from '../sidecar/identity.js';
import { registerReaderCommands } from './reader/reader-cli.js';

const program = new Command('nostr-bt')
  .description('nostr-bt operator CLI')
  .option('-c, --config <file>', 'config file (default: $NOSTR_BT_CONFIG, then /etc/nostr-bt/config.toml if present)')
  .option('-d, --data-dir <dir>', 'data directory (overrides dataDir in the config)');

function config(): Config {
  const o = program.opts<{ config?: string; dataDir?: string }>();
  try {
    return loadConfig({ configPath: o.config, dataDir: o.dataDir });
  } catch (err) {
    process.stderr.write(`nostr-bt: ${err instanceof ConfigError ? err.message : String(err)}\n`);
    process.exit(2);
  }
}

/** Asks the running sidecar; if it is down, reads the index and spool directly. */
async function fetchStatus(c: Config): Promise<Status> {
  let address = c.status.listen;
  try {
    const runtime = JSON.parse(await readFile(join(c.dataDir, 'sidecar.json'), 'utf8')) as { status?: string };
    if (runtime.status) address = runtime.status;
  } catch {
    /* not running, or an older layout */
  }
  try {
    const res = await fetch(`http://${address}/status`, { signal: AbortSignal.timeout(2000) });
    if (res.ok) return (await res.json()) as Status;
  } catch {
    /* down: fall through */
  }
  const store = Store.open(c.indexDir, { readOnly: true });
  try {
    return statusFromStore(store, { sidecar: 'down', dataDir: c.dataDir, socket: c.socket.path, uptimeSec: null, spool: await measureSpool(c.spool.dir) });
  } finally {
    await store.close();
  }
}

function table(s: Status): string {
  const rows: [string, string | number][] = [
    ['sidecar', s.sidecar],
    ['data dir', s.dataDir],
    ['events received', s.events.received],
    ['events indexed', s.events.indexed],
    ['duplicates', s.events.duplicates],
    ['events stored now', s.events.stored],
    ...Object.entries(s.skippedByPolicy).map(([k, v]) => [`skipped: ${k}`, v] as [string, number]),
    ...Object.entries(s.removed).map(([k, v]) => [`removed: ${k}`, v] as [string, number]),
    ...Object.entries(s.invalid).map(([k, v]) => [`invalid: ${k}`, v] as [string, number]),
    ['spool files', s.spool.files],
    ['spool bytes', s.spool.bytes],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') + '\n';
}

program
  .command('status')
  .description('print the sidecar status (JSON by default)')
  .option('--table', 'print a readable table instead of JSON')
  .action(async (o: { table?: boolean }) => {
    const c = config();
    let s: Status;
    try {
      s = await fetchStatus(c);
    } catch (err) {
      process.stderr.write(`nostr-bt status: no running sidecar and no readable index at ${c.indexDir}: ${(err as Error).message}\n`);
      process.exit(1);
    }
    process.stdout.write(o.table ? table(s) : JSON.stringify(s, null, 2) + '\n');
  });

program
  .command('key')
  .description("print the bridge's public key (hex and z-base-32); never the secret")
  .action(() => {
    const c = config();
    try {
      const id = loadIdentity({ nostrKeyFile: c.bridge.nostrKeyFile || undefined, generatedKeyFile: join(c.dataDir, 'bridge.key') });
      process.stdout.write(
        JSON.stringify({ publicKey: id.publicKey.toString('hex'), z32: zbase32(id.publicKey), derivedFrom: id.source === 'nostr-key' ? 'nostr secret key' : 'generated secret' }, null, 2) + '\n',
      );
    } catch (err) {
      process.stderr.write(`nostr-bt key: ${err instanceof KeyFileError ? err.message : String(err)}\n`);
      process.exit(1);
    }
  });

registerReaderCommands(program, () => config().dht.bootstrap);

await program.parseAsync();
