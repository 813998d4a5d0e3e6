// `nostr-bt status` against a running sidecar and against a stopped one (reads the index).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeWorkspace, SidecarProcess, CLI_BIN, FIXTURES } from './testkit/sidecar-process.js';
import type { Status } from '../sidecar/ops/status.js';
import { connect } from 'node:net';

const run = promisify(execFile);

test('nostr-bt status: JSON and table, sidecar up and down', async () => {
  const ws = makeWorkspace();
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  try {
    await sidecar.start();
    const sock = connect(sidecar.socketPath);
    await new Promise((r) => sock.once('connect', r));
    const lines = readFileSync(join(FIXTURES, 'strfry-plugin-input.jsonl'), 'utf8');
    let acked = '';
    sock.on('data', (d) => (acked += d.toString()));
    sock.write(lines);
    const deadline = Date.now() + 10_000;
    while (!acked.trim().split('\n').includes('15') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(acked.trim().split('\n').includes('15'), `sidecar acknowledged all 15 lines (got ${JSON.stringify(acked)})`);
    sock.destroy();

    const up = JSON.parse((await run(process.execPath, [CLI_BIN, '--config', ws.configPath, 'status'])).stdout) as Status;
    assert.equal(up.sidecar, 'up');
    assert.equal(up.events.received, 15);
    assert.equal(up.skippedByPolicy.ephemeral, 1);
    // The sidecar's own memory: its RSS is at least its V8 heap in use.
    assert.ok(up.memory && up.memory.rss >= up.memory.heapUsed && up.memory.heapUsed > 0, JSON.stringify(up.memory));
    const table = (await run(process.execPath, [CLI_BIN, '--config', ws.configPath, 'status', '--table'])).stdout;
    assert.match(table, /events received\s+15/);
    assert.match(table, /memory\s+RSS \d+(\.\d)? MB; V8 heap/);

    await sidecar.stop();
    const down = JSON.parse((await run(process.execPath, [CLI_BIN, '--config', ws.configPath, 'status'])).stdout) as Status;
    assert.equal(down.sidecar, 'down');
    assert.deepEqual(down.events, up.events);
  } finally {
    await sidecar.kill9();
    ws.cleanup();
  }
});
