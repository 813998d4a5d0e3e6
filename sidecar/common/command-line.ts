// What every nostr-bt command does the same way on its command line: `-h/--help` and
// `-V/--version` print and exit 0; a usage error (unknown option, bad or missing value, missing
// subcommand) prints one line plus a pointer to --help and exits 2 (commander's own default is 1,
// which `nostr-bt resolve` uses for "not found"). docs/operations.md lists the exit codes.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';

/** Exit status of a usage or config error, for every command. */
export const EXIT_USAGE = 2;

let version: string | undefined;

/** The version in the package's package.json (dist/sidecar/common/ → ../../../package.json). */
export function packageVersion(): string {
  if (version === undefined) {
    try {
      version =
        (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

/**
 * Applies the conventions to `cmd` and every subcommand registered so far: call it once every
 * subcommand exists, before parsing.
 */
export function applyCliConventions(cmd: Command): Command {
  const path = commandPath(cmd);
  cmd.version(`${path} ${packageVersion()}`, '-V, --version', 'print the version and exit');
  cmd.helpOption('-h, --help', 'print this help and exit');
  cmd.configureOutput({ outputError: (str, write) => write(`${path}: ${str}`) });
  cmd.showHelpAfterError(`(${path} --help for usage)`);
  cmd.exitOverride((err) => {
    // Help and version exit 0; everything else commander stops for is a usage error.
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  });
  for (const sub of cmd.commands) applyCliConventions(sub);
  return cmd;
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}
