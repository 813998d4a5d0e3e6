// systemd notify protocol against a real unix datagram listener (python3, not our code), with the
// real sidecar as a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeWorkspace, SidecarProcess } from './testkit/sidecar-process.js';
import { NotifyListener } from './testkit/notify-listener.js';

async function withNotify(
  env: NodeJS.ProcessEnv,
  fn: (s: SidecarProcess, l: NotifyListener, configPath: string) => Promise<void>,
): Promise<void> {
  const ws = makeWorkspace();
  const path = join(ws.dir, 'notify.sock');
  const listener = await NotifyListener.start(path, join(ws.dataDir, 'ingest.sock'), join(ws.dataDir, 'sidecar.json'));
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir, { NOTIFY_SOCKET: path, ...env });
  try {
    await fn(sidecar, listener, ws.configPath);
  } finally {
    await sidecar.kill9();
    await listener.close();
    ws.cleanup();
  }
}

test('sd_notify: READY=1 once serving, WATCHDOG=1 pings, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM; all from the main pid', async () => {
  await withNotify({ WATCHDOG_USEC: '200000' }, async (sidecar, listener, configPath) => {
    await sidecar.start();
    const pid = sidecar.proc!.pid;
    await listener.waitFor((ms) => ms.some((m) => m.fields.READY === '1'), 'READY=1');
    const readyAt = listener.messages.findIndex((m) => m.fields.READY === '1');
    assert.equal(
      listener.messages[readyAt]!.serving,
      true,
      'the socket accepted a connection and the runtime file existed when READY=1 arrived',
    );
    assert.match(listener.messages[readyAt]!.fields.STATUS ?? '', /events stored/);
    assert.ok(
      listener.messages.slice(0, readyAt).some((m) => /DHT/.test(m.fields.STATUS ?? '')),
      'STATUS= progress lines came before READY=1',
    );

    await listener.waitFor((ms) => ms.filter((m) => m.fields.WATCHDOG === '1').length >= 3, 'three WATCHDOG=1 pings');

    writeFileSync(configPath, readFileSync(configPath, 'utf8') + '\n[log]\nlevel = "debug"\n');
    sidecar.proc!.kill('SIGHUP');
    await listener.waitFor((ms) => ms.filter((m) => m.fields.READY === '1').length === 2, 'READY=1 after the reload');
    const reloading = listener.messages.findIndex((m) => m.fields.RELOADING === '1');
    const secondReady = listener.messages.findLastIndex((m) => m.fields.READY === '1');
    assert.ok(reloading > readyAt && reloading < secondReady, 'RELOADING=1 between the two READY=1');
    assert.match(listener.messages[reloading]!.fields.MONOTONIC_USEC ?? '', /^\d+$/);

    assert.equal(await sidecar.stop(), 0);
    const stoppingAt = listener.messages.findIndex((m) => m.fields.STOPPING === '1');
    assert.ok(stoppingAt > secondReady, 'STOPPING=1 arrived before the process exited');
    assert.ok(!listener.messages.slice(stoppingAt + 1).some((m) => m.fields.WATCHDOG), 'no watchdog pings after STOPPING=1');
    for (const m of listener.messages) assert.equal(m.pid, pid, 'every datagram comes from the main pid (NotifyAccess=main)');
    assert.match(sidecar.stderr, /"reloaded":\["log.level"\].*"config reloaded"/);
  });
});

test('sd_notify: WATCHDOG_PID naming another process means no watchdog pings', async () => {
  await withNotify({ WATCHDOG_USEC: '100000', WATCHDOG_PID: String(process.pid) }, async (sidecar, listener) => {
    await sidecar.start();
    await listener.waitFor((ms) => ms.some((m) => m.fields.READY === '1'), 'READY=1');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await sidecar.stop(), 0);
    await listener.waitFor((ms) => ms.some((m) => m.fields.STOPPING === '1'), 'STOPPING=1');
    assert.equal(listener.count('WATCHDOG'), 0);
  });
});
