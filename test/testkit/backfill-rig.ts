// A real sidecar in this process (LMDB index, ingest socket, bundler driven by hand) for backfill
// tests; the backfill command runs against it as a child process.
import { readFileSync, writeFileSync } from 'node:fs';
import { dataPathOf } from '../../sidecar/bundles/builder.js';
import { join } from 'node:path';
import { loadConfig } from '../../sidecar/common/config.js';
import { createLogger } from '../../sidecar/common/log.js';
import { Sidecar } from '../../sidecar/sidecar.js';
import { makeWorkspace } from './sidecar-process.js';

export interface BackfillRig {
  sc: Sidecar;
  ws: ReturnType<typeof makeWorkspace>;
  configPath: string;
  /** Writes lines (each + "\n") to a file in the workspace; returns its path. */
  writeFile(name: string, lines: string[]): string;
  storedIds(): string[];
  /** Cuts every pending event into bundles; returns the ids in the active bundles' data files (sorted). */
  bundleAll(): Promise<string[]>;
}

export async function withBackfillRig(
  fn: (rig: BackfillRig) => Promise<void>,
  opts: { config?: Record<string, unknown>; nowSec?: () => number; ws?: ReturnType<typeof makeWorkspace>; statusHttp?: boolean } = {},
): Promise<void> {
  // A workspace given by the caller is reused (a restart) and left for the caller to clean up.
  const ws = opts.ws ?? makeWorkspace({ log: { level: 'warn' }, ...opts.config });
  const config = loadConfig({ configPath: ws.configPath, env: {} });
  const sc = new Sidecar(config, createLogger('test', 'silent'), {
    statusHttp: opts.statusHttp ?? false,
    bundleSchedule: false,
    nowSec: opts.nowSec,
  });
  await sc.start();
  const rig: BackfillRig = {
    sc,
    ws,
    configPath: ws.configPath,
    writeFile(name, lines) {
      const p = join(ws.dir, name);
      writeFileSync(p, lines.map((l) => l + '\n').join(''));
      return p;
    },
    storedIds: () => [...sc.store.eventIds()].sort(),
    async bundleAll() {
      await sc.ingestor.idle();
      await sc.bundler!.closeWindow();
      // What the seeded bundles hold, read back from their data files.
      const ids: string[] = [];
      for (const b of sc.bundler!.activeBundles()) {
        for (const line of readFileSync(dataPathOf(sc.config.bundle.dir, b.ih), 'utf8').split('\n')) {
          if (line) ids.push((JSON.parse(line) as { id: string }).id);
        }
      }
      return ids.sort();
    },
  };
  try {
    await fn(rig);
  } finally {
    await sc.stop();
    if (!opts.ws) ws.cleanup();
  }
}
