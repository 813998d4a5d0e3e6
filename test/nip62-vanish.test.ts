// NIP-62 rules (sidecar/policy/nip62-vanish.ts): which requests aim at this relay, what a vanished
// author's later-arriving events meet, and what a request removes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { laterVanish, normalizeRelayUrl, vanishAimsHere, vanishRefuses, vanishRemoves } from '../sidecar/policy/nip62-vanish.js';

const ME = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);

test('nip-62: a request aims here by ALL_RELAYS or this relay’s URL (any relay tag when none is configured)', () => {
  const url = 'wss://relay.example.com';
  assert.equal(normalizeRelayUrl(' WSS://Relay.Example.com// '), url);
  assert.equal(vanishAimsHere([['relay', 'ALL_RELAYS']], url), true);
  assert.equal(vanishAimsHere([['relay', 'wss://RELAY.example.com/']], url), true);
  assert.equal(vanishAimsHere([['relay', 'wss://elsewhere.example']], url), false);
  assert.equal(vanishAimsHere([['relay']], url), false);
  assert.equal(vanishAimsHere([['p', url]], url), false);
  assert.equal(vanishAimsHere([], url), false);
  assert.equal(vanishAimsHere([['relay', 'wss://elsewhere.example']], ''), true);
  assert.equal(vanishAimsHere([['relay', 'wss://elsewhere.example']], undefined), true);
});

test('nip-62: a vanished author’s events up to the request stay out, except a vanish request', () => {
  assert.equal(vanishRefuses(undefined, { created_at: 1, kind: 1 }, false), false);
  assert.equal(vanishRefuses(100, { created_at: 100, kind: 1 }, false), true);
  assert.equal(vanishRefuses(100, { created_at: 101, kind: 1 }, false), false);
  assert.equal(vanishRefuses(100, { created_at: 50, kind: 62 }, true), false, 'a vanish request itself is honoured again');
  assert.equal(vanishRefuses(100, { created_at: 50, kind: 62 }, false), true, 'a kind 62 aimed elsewhere is an ordinary event');
});

test('nip-62: a request removes the author’s events up to it, not itself, not another author’s', () => {
  const request = { id: 'r'.repeat(64), pubkey: ME, created_at: 100 };
  assert.equal(vanishRemoves({ id: 'e'.repeat(64), pubkey: ME, created_at: 100 }, request), true);
  assert.equal(vanishRemoves({ id: 'e'.repeat(64), pubkey: ME, created_at: 101 }, request), false);
  assert.equal(vanishRemoves({ id: 'e'.repeat(64), pubkey: OTHER, created_at: 50 }, request), false);
  assert.equal(vanishRemoves(request, request), false);
  assert.equal(laterVanish(undefined, 1), true);
  assert.equal(laterVanish(1, 2), true);
  assert.equal(laterVanish(2, 2), false);
});
