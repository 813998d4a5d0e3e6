// The plugin's link gathers accepted lines for plugin.forwardDelayMs and sends them in one write:
// every line still reaches the socket once and in order, a connection lost before the gathered
// write went out spools those lines (exactly once), and close() sends what is gathered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../sidecar/common/log.js';
import { SidecarLink } from '../plugin/sidecar-link.js';
import { SpoolWriter } from '../plugin/spool-writer.js';

const log = createLogger('test', 'silent');

/** A socket that reads lines as the sidecar does and acknowledges the running count (when `ack`). */
async function lineServer(path: string, ack: boolean): Promise<{ server: Server; lines: string[]; chunks: () => number; conns: Socket[] }> {
  const lines: string[] = [];
  const conns: Socket[] = [];
  let chunks = 0;
  const server = createServer((sock) => {
    conns.push(sock);
    let buf = '';
    sock.on('data', (b: Buffer) => {
      chunks++;
      buf += b.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      if (ack) sock.write(`${lines.length}\n`);
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { server, lines, chunks: () => chunks, conns };
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

const spoolOpts = { maxBytes: 1 << 26, fsyncIntervalMs: 1000, rotateBytes: 1 << 24 };

function spooledLines(dir: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir).sort()) out.push(...readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean));
  return out;
}

test('gathered lines reach the socket once, in order, in a few writes; close() sends what is gathered', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-gather-'));
  const srv = await lineServer(join(dir, 's.sock'), true);
  const spool = new SpoolWriter(join(dir, 'spool'), spoolOpts, log);
  const link = new SidecarLink(join(dir, 's.sock'), spool, { maxUnacked: 10_000, forwardDelayMs: 20 }, log);
  try {
    link.start();
    assert.ok(await until(() => srv.conns.length === 1, 5000));
    await new Promise((r) => setTimeout(r, 50));
    const sent = Array.from({ length: 300 }, (_, i) => `{"line":${i}}`);
    for (const l of sent) link.forward(l);
    // Nothing is written before the gathering delay ends.
    assert.equal(srv.lines.length, 0);
    assert.ok(await until(() => srv.lines.length === 300, 5000), `got ${srv.lines.length}`);
    assert.deepEqual(srv.lines, sent);
    assert.ok(srv.chunks() <= 5, `${srv.chunks()} reads for 300 lines`);
    assert.ok(await until(() => link.stats.acked === 300, 5000));
    // A last line gathered when the plugin stops still goes out, and is acknowledged.
    link.forward('{"line":"last"}');
    await link.close(5000);
    assert.equal(srv.lines.at(-1), '{"line":"last"}');
    assert.equal(link.stats.acked, 301);
    await spool.close(1000);
    assert.equal(spool.stats.spooled, 0);
  } finally {
    await link.close(0);
    await spool.close(1000);
    for (const c of srv.conns) c.destroy();
    await new Promise((r) => srv.server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a connection lost before the gathered write went out: those lines are spooled, each once', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nostr-bt-gather-'));
  const srv = await lineServer(join(dir, 's.sock'), false);
  const spoolDir = join(dir, 'spool');
  const spool = new SpoolWriter(spoolDir, spoolOpts, log);
  // A long delay: the connection is gone before the gathered write is due.
  const link = new SidecarLink(join(dir, 's.sock'), spool, { maxUnacked: 10_000, forwardDelayMs: 1000 }, log);
  try {
    link.start();
    assert.ok(await until(() => srv.conns.length === 1, 5000));
    await new Promise((r) => setTimeout(r, 50));
    const sent = Array.from({ length: 50 }, (_, i) => `{"line":${i}}`);
    for (const l of sent) link.forward(l);
    for (const c of srv.conns) c.destroy();
    await new Promise((r) => srv.server.close(r));
    assert.ok(await until(() => link.unackedCount === 0, 5000));
    // The timer that would have written them must not write to a later connection either.
    await new Promise((r) => setTimeout(r, 1200));
    await link.close(0);
    await spool.close(2000);
    assert.equal(srv.lines.length, 0);
    assert.deepEqual(spooledLines(spoolDir), sent);
  } finally {
    await link.close(0);
    await spool.close(1000);
    rmSync(dir, { recursive: true, force: true });
  }
});
