// Reads a stopped sidecar's index and bundle data files: which events are stored, how often each
// appears in the active bundles' data, and whether the index places each one where it is.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../../sidecar/index/store.js';
import { dataPathOf } from '../../sidecar/bundles/builder.js';

export interface ArchiveContents {
  stored: Set<string>;
  /** Event id → number of times it appears across the active bundles' data. */
  inBundles: Map<string, number>;
  /** Events found in a bundle other than the one the index locates them in. */
  misplaced: number;
  activeBundles: number;
}

export async function readArchive(dataDir: string): Promise<ArchiveContents> {
  const store = Store.open(join(dataDir, 'index'), { readOnly: true });
  try {
    const stored = new Set(store.eventIds());
    const inBundles = new Map<string, number>();
    let misplaced = 0;
    let activeBundles = 0;
    for (const b of store.bundles.all()) {
      if (b.state !== 'active') continue;
      activeBundles++;
      const data = readFileSync(dataPathOf(join(dataDir, 'bundles'), b.ih), 'utf8');
      for (const line of data.split('\n')) {
        if (!line) continue;
        const id = (JSON.parse(line) as { id: string }).id;
        inBundles.set(id, (inBundles.get(id) ?? 0) + 1);
        if (store.locate(id)?.ih !== b.ih) misplaced++;
      }
    }
    return { stored, inBundles, misplaced, activeBundles };
  } finally {
    await store.close();
  }
}
