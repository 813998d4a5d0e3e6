// NIP-09 rules (sidecar/policy/nip09-deletion.ts) on their own: which targets a kind-5 event names,
// what it may remove, and which versions of a deleted address stay out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressDeletionCovers, deletionRemoves, deletionTargets, laterDeletion } from '../sidecar/policy/nip09-deletion.js';

const ME = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);
const ID = '0123456789abcdef'.repeat(4);

test('nip-09: a deletion names hex ids by e tag and its own author’s addresses by a tag', () => {
  const tags = [
    ['e', ID],
    ['e', ID.toUpperCase()], // not lowercase hex: not an id
    ['e', 'abc'],
    ['e'],
    ['a', `30023:${ME}:post`],
    ['a', `30023:${OTHER}:post`], // another author's address: only the author may delete
    ['a', `x:${ME}:post`], // the kind is not a number
    ['a', `10002:${ME}`], // a replaceable address without d: the empty d
    ['p', OTHER],
  ];
  assert.deepEqual(deletionTargets({ pubkey: ME, kind: 5, tags }), { ids: [ID], addrs: [`30023:${ME}:post`, `10002:${ME}:`] });
  assert.deepEqual(deletionTargets({ pubkey: ME, kind: 5, tags: [] }), { ids: [], addrs: [] });
});

test('nip-09: only the author’s events are removed by id, and never a deletion', () => {
  assert.equal(deletionRemoves({ pubkey: ME, kind: 1 }, ME), true);
  assert.equal(deletionRemoves({ pubkey: ME, kind: 30023 }, ME), true);
  assert.equal(deletionRemoves({ pubkey: OTHER, kind: 1 }, ME), false);
  assert.equal(deletionRemoves({ pubkey: ME, kind: 5 }, ME), false);
});

test('nip-09: a deleted address keeps out every version up to the deletion, not a later one', () => {
  assert.equal(addressDeletionCovers(undefined, 100), false);
  assert.equal(addressDeletionCovers(100, 99), true);
  assert.equal(addressDeletionCovers(100, 100), true);
  assert.equal(addressDeletionCovers(100, 101), false);
  // The tombstone keeps the newest deletion.
  assert.equal(laterDeletion(undefined, 5), true);
  assert.equal(laterDeletion(4, 5), true);
  assert.equal(laterDeletion(5, 5), false);
  assert.equal(laterDeletion(6, 5), false);
});
