// The plugin's command line. strfry runs the plugin with no arguments through `/bin/sh -c`, so
// this module (and commander) is loaded only when there are arguments (main.ts): a start by
// strfry with a bare path pays nothing for it.
import { readFileSync } from 'node:fs';
import { Command, type CommanderError } from 'commander';

export interface PluginFlags {
  config?: string;
  dataDir?: string;
}

const HELP_AFTER = `
strfry runs this command as relay.writePolicy.plugin in strfry.conf: one JSON request per line on
stdin, one verdict per line on stdout (nothing else is ever written to stdout; logs go to stderr,
which is strfry's log). Accepted events go to nostr-bt-sidecar over its Unix socket, or to the
spool directory while the sidecar is down.

The config file is --config FILE, else $NOSTR_BT_CONFIG, else /etc/nostr-bt/config.toml if it
exists, else the built-in defaults (data in ./nostr-bt-data, relative to strfry's working
directory: the plugin then logs a warning). Use the same file as nostr-bt-sidecar.

A plugin command with spaces (such as "nostr-bt-plugin --config FILE") turns off strfry's
restart-on-mtime: after an upgrade, restart strfry. Without spaces: set NOSTR_BT_CONFIG in
strfry's environment, use /etc/nostr-bt/config.toml, or point strfry at a wrapper script.

Environment: NOSTR_BT_CONFIG, NOSTR_BT_DATA_DIR, NOSTR_BT_PLUGIN_LOG_LEVEL.
Exit status: 0 when stdin ends (or after --help/--version), 2 for a usage error.
See README.md ("Enable the plugin in strfry.conf") and docs/config.md.`;

/** package.json two levels up from dist/plugin/, as installed. */
function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * Parses argv (process.argv layout). Prints and exits 0 for --help/--version; prints the error
 * on stderr and exits 2 for a usage error (unknown flag, missing value, stray argument).
 */
export function parsePluginFlags(argv: string[]): PluginFlags {
  const program = new Command('nostr-bt-plugin')
    .description("nostr-bt's strfry write-policy plugin: answers strfry at once and hands accepted events to nostr-bt-sidecar")
    .option('-c, --config <file>', 'config file (default: $NOSTR_BT_CONFIG, then /etc/nostr-bt/config.toml if present)')
    .option('-d, --data-dir <dir>', 'data directory (overrides dataDir in the config; default $NOSTR_BT_DATA_DIR)')
    .version(version(), '-V, --version')
    .helpOption('-h, --help')
    .allowExcessArguments(false)
    .showHelpAfterError("(run 'nostr-bt-plugin --help' for usage)")
    .addHelpText('after', HELP_AFTER)
    .exitOverride((err: CommanderError) => {
      // Help and version exit 0; everything else is a usage error, already printed on stderr.
      process.exit(err.exitCode === 0 ? 0 : 2);
    });
  program.parse(argv);
  return program.opts<PluginFlags>();
}
