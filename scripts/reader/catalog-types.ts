// The catalog reader's public types and limits (docs/reader.md), apart from the reader itself so
// the library's declarations reach no module that needs the DHT's or WebTorrent's types.
import type { BridgeInfo } from '../../sidecar/formats/pointer-item.js';
import type { Catalog } from '../../sidecar/formats/catalog.js';
import type { FetchFailure } from './reader-types.js';

export interface CatalogLimits {
  /** The bridge item's DHT get. */
  itemTimeoutMs: number;
  /** Fetching the catalog torrent (metadata and file). */
  catalogTimeoutMs: number;
  /** Largest catalog file accepted (bytes). */
  maxCatalogBytes: number;
  /** Bundles a catalog may list. */
  maxBundles: number;
  /** Per bundle whose metadata is checked. */
  bundleTimeoutMs: number;
  maxMetadataBytes: number;
  /** Bundles checked at once. */
  concurrency: number;
}

export const DEFAULT_CATALOG_LIMITS: CatalogLimits = {
  itemTimeoutMs: 20_000,
  catalogTimeoutMs: 120_000,
  maxCatalogBytes: 256 * 1024 * 1024,
  maxBundles: 10_000,
  bundleTimeoutMs: 60_000,
  maxMetadataBytes: 4 * 1024 * 1024,
  concurrency: 8,
};

/** A bundle of the catalog checked against its own metadata. */
export type BundleCheck = { ih: string; ok: true } | { ih: string; ok: false; reason: 'mismatch' | FetchFailure; detail: string };

export type CatalogReadResult =
  | {
      status: 'found';
      bridge: string;
      /** The bridge item as signed (its seq, and what it says of the archive). */
      item: BridgeInfo & { seq: number };
      infoHash: string;
      catalog: Catalog;
      bytes: number;
      /** Present when the bundles were checked: one entry per bundle, in catalog order. */
      checks?: BundleCheck[];
    }
  | { status: 'no-item' | 'no-catalog' | 'invalid' | 'unreachable'; bridge: string; detail: string };
