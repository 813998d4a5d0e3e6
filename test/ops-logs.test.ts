// Logs: one JSON object per line on stderr; under systemd (JOURNAL_STREAM names stderr) each line
// carries journald's <priority> prefix so `journalctl -p warning` works, and nothing else changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeWorkspace, SIDECAR_BIN, sleep } from './testkit/sidecar-process.js';

async function runSidecar(configPath: string, logFile: string, journalStream: (fd: number) => string | undefined): Promise<string[]> {
  const fd = openSync(logFile, 'w');
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.JOURNAL_STREAM;
  const js = journalStream(fd);
  if (js) env.JOURNAL_STREAM = js;
  const p = spawn(process.execPath, [SIDECAR_BIN, '--config', configPath], { stdio: ['ignore', 'ignore', fd], env });
  closeSync(fd);
  const exited = new Promise<number | null>((r) => p.once('exit', r));
  try {
    const deadline = Date.now() + 15_000;
    while (!readFileSync(logFile, 'utf8').includes('"sidecar ready"') && Date.now() < deadline && p.exitCode === null) await sleep(25);
    assert.equal(p.exitCode, null, `sidecar running: ${readFileSync(logFile, 'utf8')}`);
    p.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    p.kill('SIGKILL');
  }
  return readFileSync(logFile, 'utf8').trim().split('\n');
}

test('journald: <priority> prefix by level when stderr is the journal stream, plain JSON lines otherwise', async () => {
  const ws = makeWorkspace({ log: { level: 'debug' } });
  try {
    const priority: Record<number, number> = { 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };
    const journal = await runSidecar(ws.configPath, join(ws.dir, 'journal.log'), (fd) => {
      const st = fstatSync(fd);
      return `${st.dev}:${st.ino}`;
    });
    assert.ok(journal.some((l) => l.includes('"sidecar stopped"')));
    for (const line of journal) {
      const m = /^<(\d)>(\{.*\})$/.exec(line);
      assert.ok(m, `prefixed JSON line: ${line}`);
      const obj = JSON.parse(m[2]!) as { level: number };
      assert.equal(Number(m[1]), priority[obj.level], line);
    }
    const plain = await runSidecar(ws.configPath, join(ws.dir, 'plain.log'), () => '1:2');
    for (const line of plain) assert.doesNotThrow(() => JSON.parse(line) as unknown, `plain JSON line: ${line}`);
  } finally {
    ws.cleanup();
  }
});
