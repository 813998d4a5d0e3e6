// The `[media]` config section is MediaOptions key for key, with the same defaults, and refuses
// values the media modules could not work with, naming the key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../sidecar/common/config.js';
import { DEFAULT_MEDIA_OPTIONS, mediaOptionsOf } from '../sidecar/media/options.js';

const load = (media: Record<string, unknown> = {}) => loadConfig({ env: {}, cwd: '/x', configPath: undefined, overrides: { media } });

test('[media] has exactly the MediaOptions keys and their defaults', () => {
  const c = load();
  assert.deepEqual(Object.keys(c.media).sort(), Object.keys(DEFAULT_MEDIA_OPTIONS).sort());
  assert.deepEqual(mediaOptionsOf(c.media), DEFAULT_MEDIA_OPTIONS);
  assert.equal(c.media.enabled, false);
});

test('[media] values reach MediaOptions; bad ones are refused by key', () => {
  const c = load({
    enabled: true,
    allowLoopback: true,
    kinds: [1, 1063],
    allowAddresses: ['10.1.2.3/32'],
    mimeAllow: ['image/*'],
    concurrency: 2,
  });
  const o = mediaOptionsOf(c.media);
  assert.equal(o.enabled, true);
  assert.equal(o.allowLoopback, true);
  assert.deepEqual(o.kinds, [1, 1063]);
  assert.deepEqual(o.allowAddresses, ['10.1.2.3/32']);
  assert.equal(o.concurrency, 2);
  for (const [bad, key] of [
    [{ allowAddresses: ['10.0.0.0/33'] }, /media\.allowAddresses\.0: an address range/],
    [{ mimeAllow: ['png'] }, /media\.mimeAllow\.0: a media type/],
    [{ concurrency: 0 }, /media\.concurrency/],
    [{ maxBlobBytes: -1 }, /media\.maxBlobBytes/],
    [{ enabeld: true }, /media\.enabeld: unknown key; did you mean media\.enabled\?/],
  ] as const) {
    assert.throws(
      () => load(bad),
      (e: Error) => e instanceof ConfigError && key.test(e.message),
      JSON.stringify(bad),
    );
  }
});
