// /metrics (Prometheus, prom-client) from the real sidecar after real ingest, bundling and DHT puts:
// the figures match `nostr-bt status`, and no secret shows up in metrics, status, table or logs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { nip19 } from 'nostr-tools';
import { deriveBridgeSeed } from '../sidecar/publishing/identity.js';
import type { Status } from '../sidecar/ops/status.js';
import { makeWorkspace, SidecarProcess, CLI_BIN, FIXTURES, sleep } from './testkit/sidecar-process.js';
import { startLocalDht } from './testkit/local-dht.js';

const run = promisify(execFile);

type Samples = Map<string, number>;

/** Prometheus text format → `name{labels}` → value (labels as written by prom-client). */
function parseMetrics(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

async function sendLines(socketPath: string, text: string, expectAck: number): Promise<void> {
  const sock = connect(socketPath);
  await new Promise((r) => sock.once('connect', r));
  let acked = '';
  sock.on('data', (d) => (acked += d.toString()));
  sock.write(text);
  const deadline = Date.now() + 10_000;
  while (!acked.trim().split('\n').includes(String(expectAck)) && Date.now() < deadline) await sleep(20);
  sock.destroy();
  assert.ok(acked.trim().split('\n').includes(String(expectAck)), `all ${expectAck} lines acknowledged`);
}

test('metrics match `nostr-bt status` after ingest, bundles and DHT puts; no secret in metrics, status or logs', {
  timeout: 90_000,
}, async () => {
  const dht = await startLocalDht(8);
  const secret = randomBytes(32);
  const ws = makeWorkspace({
    dht: { bootstrap: dht.bootstrap, putsPerSecond: 200 },
    bundle: { windowSeconds: 1 },
  });
  const keyFile = join(ws.dir, 'nsec');
  writeFileSync(keyFile, nip19.nsecEncode(secret) + '\n', { mode: 0o600 });
  writeFileSync(ws.configPath, readFileSync(ws.configPath, 'utf8') + `\n[bridge]\nnostrKeyFile = "${keyFile}"\n`);
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  try {
    await sidecar.start();
    // A reload at debug level first, so debug logs are checked for secrets too.
    writeFileSync(ws.configPath, readFileSync(ws.configPath, 'utf8') + '\n[log]\nlevel = "debug"\n');
    sidecar.proc!.kill('SIGHUP');
    const fixtures = readFileSync(join(FIXTURES, 'strfry-plugin-input.jsonl'), 'utf8');
    const lines = fixtures.trim().split('\n').length;
    await sendLines(sidecar.socketPath, fixtures + fixtures + 'not json\n', 2 * lines + 1);
    await sidecar.waitFor(
      (s) => (s.bundles?.active ?? 0) >= 1 && (s.pointers?.published ?? 0) >= 1 && s.pointers?.dirtyAuthors === 0,
      30_000,
    );

    const runtime = JSON.parse(readFileSync(join(ws.dataDir, 'sidecar.json'), 'utf8')) as { status: string };
    assert.match(runtime.status, /^127\.0\.0\.1:\d+$/, 'metrics are served on the loopback status listener');
    const scrape = async () => {
      const res = await fetch(`http://${runtime.status}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      return res.text();
    };
    const cliStatus = async () =>
      JSON.parse((await run(process.execPath, [CLI_BIN, '--config', ws.configPath, 'status'])).stdout) as Status;

    // Puts may still land meanwhile: use a status and a table read between two identical scrapes.
    const cliTable = async () => (await run(process.execPath, [CLI_BIN, '--config', ws.configPath, 'status', '--table'])).stdout;
    let m!: Samples;
    let s!: Status;
    let table = '';
    let metricsText = '';
    for (let i = 0; i < 20; i++) {
      const before = parseMetrics((metricsText = await scrape()));
      s = await cliStatus();
      table = await cliTable();
      const after = parseMetrics(await scrape());
      const stable = (k: string) => before.get(k) === after.get(k);
      if (
        ['nostr_bt_pointers_published_total', 'nostr_bt_pointer_put_nodes_count{result="ok"}', 'nostr_bt_bundles_built_total'].every(stable)
      ) {
        m = after;
        break;
      }
      await sleep(200);
    }
    assert.ok(m, 'metrics settled');

    assert.equal(s.sidecar, 'up');
    assert.equal(m.get('nostr_bt_events_received_total'), s.events.received);
    assert.equal(s.events.received, 2 * lines + 1);
    assert.equal(m.get('nostr_bt_events_indexed_total'), s.events.indexed);
    assert.equal(m.get('nostr_bt_events_duplicate_total'), s.events.duplicates);
    assert.ok(s.events.duplicates >= 1, 'the second copy of the fixtures was deduplicated');
    const sum = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);
    assert.equal(
      s.events.indexed + s.events.duplicates + sum(s.skippedByPolicy) + sum(s.invalid),
      s.events.received,
      'every line accounted for',
    );
    assert.equal(m.get('nostr_bt_events_stored'), s.events.stored);
    for (const [reason, n] of Object.entries(s.skippedByPolicy))
      assert.equal(m.get(`nostr_bt_events_skipped_total{reason="${reason}"}`), n, reason);
    assert.equal(m.get('nostr_bt_events_skipped_total{reason="ephemeral"}'), 2);
    for (const [reason, n] of Object.entries(s.invalid))
      assert.equal(m.get(`nostr_bt_events_invalid_total{reason="${reason}"}`), n, reason);
    assert.equal(sum(s.invalid), 1, 'the garbage line is counted as invalid');
    assert.equal(m.get('nostr_bt_spool_files'), s.spool.files);
    assert.equal(m.get('nostr_bt_spool_bytes'), s.spool.bytes);

    assert.equal(m.get('nostr_bt_ingest_latency_seconds_count'), s.ingest!.latency!.count);
    assert.equal(s.ingest!.latency!.count, s.events.received, 'one latency observation per line received');
    assert.equal(m.get('nostr_bt_ingest_latency_seconds_bucket{le="+Inf"}'), s.events.received);

    for (const [level, n] of Object.entries(s.bundles!.byLevel)) assert.equal(m.get(`nostr_bt_bundles_active{level="${level}"}`), n);
    assert.equal(m.get('nostr_bt_bundles_bytes'), s.bundles!.bytes);
    assert.equal(m.get('nostr_bt_bundles_events'), s.bundles!.events);
    assert.equal(m.get('nostr_bt_bundles_built_total'), s.bundles!.built);
    assert.ok(s.bundles!.built! >= 1);
    assert.equal(m.get('nostr_bt_torrents_active'), s.seeding!.torrents);
    assert.equal(s.seeding!.torrents, s.bundles!.active + (s.catalog?.seeded ?? 0), 'the bundles and the catalog');
    assert.equal(m.get('nostr_bt_peers'), s.seeding!.peers);
    assert.equal(m.get('nostr_bt_uploaded_bytes_total'), s.seeding!.uploaded);
    assert.equal(m.get('nostr_bt_dht_nodes'), s.dht!.nodes);
    assert.ok(s.dht!.nodes > 0);

    const p = s.pointers!;
    assert.equal(m.get('nostr_bt_pointer_items'), p.items);
    assert.equal(m.get('nostr_bt_pointers_published_total'), p.published);
    assert.equal(m.get('nostr_bt_pointers_republished_total'), p.republished);
    assert.equal(m.get('nostr_bt_pointers_failed_total'), p.failed);
    assert.equal(m.get('nostr_bt_pointers_stale'), p.stale);
    assert.equal(m.get('nostr_bt_pointer_republish_lag_seconds'), p.republishLagSec ?? 0);
    assert.equal(p.republishLagSec, 0, 'everything was put moments ago');
    assert.equal(m.get('nostr_bt_pointer_put_nodes_count{result="ok"}'), p.putNodes!.count);
    assert.equal(p.putNodes!.count, p.published + p.republished, 'one observation per successful put');
    assert.ok(p.putNodes!.mean! >= 1, 'each put was stored on at least one node');
    assert.ok((m.get('process_resident_memory_bytes') ?? 0) > 0, 'process metrics too');

    assert.match(table, new RegExp(`pointers published\\s+${p.published}\\n`));
    assert.match(table, /bundles active\s+\d+ \(\d+ window/);
    assert.match(table, /ingest latency\s+mean [\d.]+ ms/);
    assert.match(table, /nodes storing a put\s+mean/);
    assert.match(table, new RegExp(`bridge key\\s+${s.bridge!.publicKey}`));

    // Secrets: the Nostr key (hex, nsec) and the derived bridge seed (hex, base64) appear nowhere.
    const seed = deriveBridgeSeed(secret);
    const forbidden = [
      secret.toString('hex'),
      nip19.nsecEncode(secret),
      seed.toString('hex'),
      seed.toString('base64'),
      secret.toString('base64'),
    ];
    const statusJson = await (await fetch(`http://${runtime.status}/status`)).text();
    await sidecar.stop();
    assert.match(sidecar.stderr, /"level":20/, 'debug logs were on');
    for (const [what, text] of Object.entries({ metrics: metricsText, status: statusJson, table, logs: sidecar.stderr })) {
      for (const f of forbidden) assert.ok(!text.includes(f), `no secret in ${what}`);
    }
  } finally {
    await sidecar.kill9();
    await dht.stop();
    ws.cleanup();
  }
});

test("the ingest latency histogram (observations with a count) exposes what prom-client's Histogram does for the same values one by one", async () => {
  const { Histogram, Registry } = await import('prom-client');
  const { CountedHistogram } = await import('../sidecar/ops/counted-histogram.js');
  const buckets = [0.001, 0.01, 0.1, 1, 10];
  const ours = new Registry();
  const theirs = new Registry();
  const counted = new CountedHistogram('h_seconds', 'help text', buckets, ours);
  const reference = new Histogram({ name: 'h_seconds', help: 'help text', buckets, registers: [theirs] });
  for (const [value, times] of [
    [0.0005, 3],
    [0.001, 1],
    [0.05, 7],
    [2, 2],
    [50, 4],
    [0.01, 1],
  ] as const) {
    counted.observe(value, times);
    for (let i = 0; i < times; i++) reference.observe(value);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
  counted.reset();
  const fresh = new Registry();
  new Histogram({ name: 'h_seconds', help: 'help text', buckets, registers: [fresh] });
  assert.equal(await ours.metrics(), await fresh.metrics(), 'reset: zeros, as a histogram never observed');
});
