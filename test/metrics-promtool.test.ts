// /metrics of the real sidecar passes Prometheus' own linter, `promtool check metrics` (Debian's
// `prometheus` package; .ci/run installs it). Without promtool this test fails: it does not skip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { FIXTURES, makeWorkspace, SidecarProcess, sleep } from './testkit/sidecar-process.js';

function promtool(metrics: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile('promtool', ['check', 'metrics'], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error('promtool not found: install it (Debian: apt-get install --no-install-recommends prometheus) to run this test'));
        return;
      }
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, output: stdout + stderr });
    });
    child.stdin!.end(metrics);
  });
}

test('promtool is installed (the metrics lint below needs it)', () => {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  assert.ok(!r.error, `promtool not found (${r.error?.message}): Debian: apt-get install --no-install-recommends prometheus`);
  assert.equal(r.status, 0, r.stderr);
});

test('the sidecar /metrics passes `promtool check metrics` after ingest', { timeout: 90_000 }, async () => {
  const ws = makeWorkspace({ dht: { enabled: false } });
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  try {
    await sidecar.start();
    // Some traffic, so the labelled counters and the latency histogram have samples.
    const fixtures = readFileSync(join(FIXTURES, 'strfry-plugin-input.jsonl'), 'utf8');
    const lines = fixtures.trim().split('\n').length + 1;
    const sock = connect(sidecar.socketPath);
    await new Promise((r) => sock.once('connect', r));
    let acked = '';
    sock.on('data', (d) => (acked += d.toString()));
    sock.write(fixtures + 'not json\n');
    const deadline = Date.now() + 20_000;
    while (!acked.trim().split('\n').includes(String(lines)) && Date.now() < deadline) await sleep(20);
    sock.destroy();
    assert.ok(acked.trim().split('\n').includes(String(lines)), 'every line acknowledged');

    const runtime = JSON.parse(readFileSync(join(ws.dataDir, 'sidecar.json'), 'utf8')) as { status: string };
    const body = await (await fetch(`http://${runtime.status}/metrics`)).text();
    assert.match(body, /^nostr_bt_events_invalid_total\{reason="malformed"\} 1$/m, 'the scrape has the traffic');
    assert.match(body, /^nostr_bt_ingest_connections_total \d+$/m);
    assert.match(body, /^nodejs_active_(handles|resources)\{/m, "Node's process metrics are still there");
    const r = await promtool(body);
    assert.equal(r.code, 0, `promtool check metrics:\n${r.output}`);
  } finally {
    await sidecar.stop();
    ws.cleanup();
  }
});
