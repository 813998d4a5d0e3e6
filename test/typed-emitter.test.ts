// The stages' events go through TypedEmitter (sidecar/common/typed-emitter.ts): listeners get
// exactly what was emitted, once/off behave as node:events does, and the compiler refuses a
// misspelt event or a wrong payload (the @ts-expect-error lines below fail the build if it stops).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TypedEmitter } from '../sidecar/common/typed-emitter.js';

interface Events {
  batch: [report: { lines: number }, source: string];
  drain: [];
}

class Stage extends TypedEmitter<Events> {}

test('a typed emitter hands listeners the emitted arguments; once fires once, off removes', () => {
  const s = new Stage();
  const got: unknown[][] = [];
  const onBatch = (r: { lines: number }, source: string) => got.push(['on', r.lines, source]);
  s.on('batch', onBatch);
  s.once('batch', (r, source) => got.push(['once', r.lines, source]));
  let drains = 0;
  s.on('drain', () => drains++);
  assert.equal(s.emit('batch', { lines: 3 }, 'socket'), true);
  s.emit('batch', { lines: 5 }, 'spool');
  s.off('batch', onBatch);
  assert.equal(s.emit('batch', { lines: 7 }, 'socket'), false);
  s.emit('drain');
  assert.deepEqual(got, [
    ['on', 3, 'socket'],
    ['once', 3, 'socket'],
    ['on', 5, 'spool'],
  ]);
  assert.equal(drains, 1);
  assert.equal(s.listenerCount('batch'), 0);
});

// Never called: only compiled.
export function misuses(s: Stage): void {
  // @ts-expect-error no such event
  s.on('bacth', () => {});
  // @ts-expect-error the payload is missing
  s.emit('batch');
  // @ts-expect-error a listener that expects another payload
  s.on('batch', (r: string) => r);
  // @ts-expect-error 'drain' carries nothing
  s.emit('drain', 1);
}
