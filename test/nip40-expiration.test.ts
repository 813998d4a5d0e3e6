// NIP-40 rules (sidecar/policy/nip40-expiration.ts): an event has expired once the second its
// expiration tag names has come, and a sweep's range ends at the first time not yet expired.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstUnexpired, hasExpired } from '../sidecar/policy/nip40-expiration.js';

test('nip-40: expired at and after its expiration second, not before', () => {
  assert.equal(hasExpired(1_700_000_000, 1_699_999_999), false);
  assert.equal(hasExpired(1_700_000_000, 1_700_000_000), true);
  assert.equal(hasExpired(1_700_000_000, 1_700_000_001), true);
});

test('nip-40: the sweep range ends at the first expiration not yet passed', () => {
  for (const now of [0, 1_700_000_000, 2 ** 40]) {
    const end = firstUnexpired(now);
    assert.equal(hasExpired(end, now), false, 'the end is not expired');
    assert.equal(hasExpired(end - 1, now), true, 'everything below it is');
  }
});
