// Reading a bridge's catalog (docs/protocol.md §11): the bridge item from the DHT (signature
// checked), the catalog torrent it names (`c`), fetched like an author's file, decoded strictly,
// and each bundle it names checked against that bundle's own metadata (file list, bytes, events).
// Mirrors and restores start here; `nostr-bt catalog --bridge <key>` prints it.
import { BRIDGE_SALT, BadItem, decodeBridgeValue, type BridgeInfo } from '../../sidecar/formats/pointer-item.js';
import { BadCatalog, catalogMismatch, decodeCatalog, type Catalog, type CatalogBundle } from '../../sidecar/formats/catalog.js';
import { getVerifiedItem } from '../../sidecar/dht/mutable-get.js';
import type { ReaderContext } from './reader-context.js';
import { DEFAULT_CATALOG_LIMITS, type BundleCheck, type CatalogLimits, type CatalogReadResult } from './catalog-types.js';

export { DEFAULT_CATALOG_LIMITS, type BundleCheck, type CatalogLimits, type CatalogReadResult };

class Collected {
  chunks: Buffer[] = [];
}

/**
 * The bridge item and catalog of `bridgeKey`; with `verify`, every bundle named is checked against
 * its metadata (a bundle whose metadata cannot be had is reported, not fatal). Never throws on
 * what the network sends.
 */
export async function readCatalog(
  ctx: ReaderContext,
  bridgeKey: Buffer,
  opts: {
    verify?: boolean;
    limits?: Partial<CatalogLimits>;
    signal?: AbortSignal;
    onCheck?: (c: BundleCheck, done: number, total: number) => void;
  } = {},
): Promise<CatalogReadResult> {
  const limits = { ...DEFAULT_CATALOG_LIMITS, ...opts.limits };
  const bridge = bridgeKey.toString('hex');
  const got = await getVerifiedItem(ctx.dht, bridgeKey, BRIDGE_SALT, limits.itemTimeoutMs);
  if (got === 'absent' || got === 'timeout') return { status: 'no-item', bridge, detail: `no bridge item in the DHT (${got})` };
  if (typeof got === 'string') return { status: 'invalid', bridge, detail: `bridge item: ${got}` };
  let info: BridgeInfo;
  try {
    info = decodeBridgeValue(got.v);
  } catch (err) {
    return { status: 'invalid', bridge, detail: `bridge item: ${err instanceof BadItem ? err.message : String(err)}` };
  }
  const item = { ...info, seq: got.seq };
  if (!info.catalog)
    return { status: 'no-catalog', bridge, detail: 'the bridge item names no catalog (an older bridge, or catalog.enabled = false)' };
  const collected = new Collected();
  const out = await ctx.fetcher.fetchAuthorFile(
    info.catalog,
    bridge,
    { maxMetadataBytes: 64 * 1024, maxFileBytes: limits.maxCatalogBytes, timeoutMs: limits.catalogTimeoutMs },
    { signal: opts.signal, onPiece: (index, _count, data) => (collected.chunks[index] = Buffer.from(data)) },
  );
  if (!out.ok) return { status: 'unreachable', bridge, detail: `catalog ${info.catalog}: ${out.reason}: ${out.detail}` };
  const bytes = Buffer.concat(collected.chunks);
  let catalog: Catalog;
  try {
    catalog = decodeCatalog(bytes, bridge, {
      maxBundles: limits.maxBundles,
      maxAuthorEntries: Math.floor(limits.maxCatalogBytes / 67) + 1,
    });
  } catch (err) {
    return { status: 'invalid', bridge, detail: `catalog ${info.catalog}: ${err instanceof BadCatalog ? err.message : String(err)}` };
  }
  const result: CatalogReadResult = { status: 'found', bridge, item, infoHash: info.catalog, catalog, bytes: bytes.length };
  if (opts.verify) result.checks = await checkBundles(ctx, catalog.bundles, limits, opts.signal, opts.onCheck);
  return result;
}

/** Each bundle's metadata against its catalog entry, `concurrency` at a time. */
export async function checkBundles(
  ctx: ReaderContext,
  bundles: readonly CatalogBundle[],
  limits: Pick<CatalogLimits, 'bundleTimeoutMs' | 'maxMetadataBytes' | 'concurrency'>,
  signal?: AbortSignal,
  onCheck?: (c: BundleCheck, done: number, total: number) => void,
): Promise<BundleCheck[]> {
  const checks: BundleCheck[] = new Array(bundles.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < bundles.length && !signal?.aborted) {
      const i = next++;
      const b = bundles[i]!;
      const meta = await ctx.fetcher.fetchMetadata(
        b.ih,
        { maxMetadataBytes: limits.maxMetadataBytes, timeoutMs: limits.bundleTimeoutMs },
        signal,
      );
      let c: BundleCheck;
      if (!meta.ok) c = { ih: b.ih, ok: false, reason: meta.reason, detail: meta.detail };
      else {
        const problem = catalogMismatch(b, meta);
        c = problem ? { ih: b.ih, ok: false, reason: 'mismatch', detail: problem } : { ih: b.ih, ok: true };
      }
      checks[i] = c;
      onCheck?.(c, ++done, bundles.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limits.concurrency, bundles.length)) }, worker));
  for (let i = 0; i < bundles.length; i++) checks[i] ??= { ih: bundles[i]!.ih, ok: false, reason: 'aborted', detail: 'aborted' };
  return checks;
}
