// SIGHUP on the real sidecar: safe keys apply at once, the rest are named as needing a restart,
// and a broken config file is refused with the key named while the sidecar keeps running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { makeWorkspace, SidecarProcess, sleep } from './testkit/sidecar-process.js';
import { unsignedEvent, pluginLine, pubkeyN } from './testkit/events.js';
import { loadConfig } from '../sidecar/common/config.js';
import { diffConfig, RELOADABLE_KEYS } from '../sidecar/ops/reload.js';

async function send(socketPath: string, lines: string[]): Promise<void> {
  const sock = connect(socketPath);
  await new Promise((r) => sock.once('connect', r));
  let acked = '';
  sock.on('data', (d) => (acked += d.toString()));
  sock.write(lines.join('\n') + '\n');
  const deadline = Date.now() + 10_000;
  while (!acked.trim().split('\n').includes(String(lines.length)) && Date.now() < deadline) await sleep(20);
  sock.destroy();
  assert.ok(acked.trim().split('\n').includes(String(lines.length)), 'lines acknowledged');
}

async function waitForLog(s: SidecarProcess, re: RegExp, from: number): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const m = re.exec(s.stderr.slice(from));
    if (m) return m[0];
    await sleep(20);
  }
  throw new Error(`no log line ${re} in: ${s.stderr.slice(from)}`);
}

const note = (i: number) => pluginLine(unsignedEvent(pubkeyN(1), { kind: 1, created_at: 1_700_000_000 + i, content: `note ${i}` }));

test('SIGHUP: policy and log level apply at once, restart-only keys are named, a bad file is refused and the sidecar keeps running', async () => {
  const ws = makeWorkspace();
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  const original = readFileSync(ws.configPath, 'utf8');
  try {
    await sidecar.start();
    await send(sidecar.socketPath, [note(1)]);
    assert.equal((await sidecar.status()).events.indexed, 1);

    let mark = sidecar.stderr.length;
    writeFileSync(
      ws.configPath,
      original.replace('[bittorrent]\n', '[bittorrent]\nmaxConns = 50\n') + '\n[policy]\ndenyKinds = [1]\n\n[log]\nlevel = "debug"\n',
    );
    sidecar.proc!.kill('SIGHUP');
    const line = JSON.parse(await waitForLog(sidecar, /\{[^\n]*"config reloaded[^\n]*\}/, mark)) as {
      level: number;
      reloaded: string[];
      restartNeeded: string[];
    };
    assert.deepEqual(line.reloaded.sort(), ['log.level', 'policy.denyKinds']);
    assert.deepEqual(line.restartNeeded, ['bittorrent.maxConns']);
    assert.equal(line.level, 40, 'a warning, since a restart is needed');

    await send(sidecar.socketPath, [note(2)]);
    let s = await sidecar.status();
    assert.equal(s.events.indexed, 1);
    assert.equal(s.skippedByPolicy['kind-denied'], 1, 'the new policy applies to the next event');
    assert.match(sidecar.stderr.slice(mark), /"level":20,[^\n]*"batch committed"/, 'debug logging is on');

    mark = sidecar.stderr.length;
    writeFileSync(ws.configPath, original + '\n[policy]\ndenyKinds = "one"\n');
    sidecar.proc!.kill('SIGHUP');
    const refused = await waitForLog(sidecar, /\{[^\n]*"config reload failed[^\n]*\}/, mark);
    assert.match(refused, /policy\.denyKinds/);
    await send(sidecar.socketPath, [note(3)]);
    s = await sidecar.status();
    assert.equal(s.skippedByPolicy['kind-denied'], 2, 'the running config stays in force');
    assert.equal(await sidecar.stop(), 0);
  } finally {
    await sidecar.kill9();
    ws.cleanup();
  }
});

test('diffConfig: every changed key is classified; derived paths are not reported twice', () => {
  const base = loadConfig({ env: {}, cwd: '/srv', overrides: { dataDir: '/srv/a' } });
  const next = loadConfig({
    env: {},
    cwd: '/srv',
    overrides: {
      dataDir: '/srv/b',
      dht: { putsPerSecond: 5, port: 7000 },
      policy: { relayUrl: 'wss://r.example' },
      status: { listen: '127.0.0.1:1' },
    },
  });
  const d = diffConfig(base, next);
  assert.deepEqual(d.reloadable.sort(), ['dht.putsPerSecond', 'policy.relayUrl']);
  assert.deepEqual(d.restartNeeded.sort(), ['bundle.dir', 'dataDir', 'dht.port', 'socket.path', 'spool.dir', 'status.listen']);
  assert.deepEqual(diffConfig(base, base), { reloadable: [], restartNeeded: [] });
  for (const k of RELOADABLE_KEYS) {
    const [section, name] = k.split('.') as [string, string];
    assert.ok(name in (base as unknown as Record<string, Record<string, unknown>>)[section]!, `${k} is a real config key`);
  }
});
