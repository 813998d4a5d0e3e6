// The media settings form one flat object that a `[media]` config section can map onto key for key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MEDIA_OPTIONS } from '../sidecar/media/options.js';
import { DEFAULT_BLOB_STORE_OPTIONS } from '../sidecar/media/blob-store.js';
import { DEFAULT_FETCH_QUEUE_OPTIONS } from '../sidecar/media/fetch-queue.js';
import { DEFAULT_REFERENCE_LIMITS } from '../sidecar/media/references.js';
import { DEFAULT_FETCH_POLICY, checkFetchPolicy } from '../sidecar/media/safe-fetch.js';

test('the parts of the media options do not share a key, and the defaults pass their own checks', () => {
  const parts = [DEFAULT_REFERENCE_LIMITS, DEFAULT_FETCH_POLICY, DEFAULT_FETCH_QUEUE_OPTIONS, DEFAULT_BLOB_STORE_OPTIONS].map((p) =>
    Object.keys(p),
  );
  const all = parts.flat();
  assert.equal(new Set(all).size, all.length, `a key appears twice: ${all.join(', ')}`);
  assert.deepEqual(Object.keys(DEFAULT_MEDIA_OPTIONS).sort(), ['enabled', 'kinds', ...all].sort());
  assert.equal(DEFAULT_MEDIA_OPTIONS.enabled, false);
  assert.equal(
    DEFAULT_MEDIA_OPTIONS.allowLoopback || DEFAULT_MEDIA_OPTIONS.allowPrivate,
    false,
    'nothing internal is reachable by default',
  );
  checkFetchPolicy(DEFAULT_MEDIA_OPTIONS);
  assert.throws(
    () => checkFetchPolicy({ ...DEFAULT_FETCH_POLICY, allowAddresses: ['10.0.0.0/33'] }),
    /allowAddresses: "10.0.0.0\/33" is not an address range/,
  );
  assert.throws(() => checkFetchPolicy({ ...DEFAULT_FETCH_POLICY, timeoutMs: 0 }), /timeoutMs must be a positive integer/);
});
