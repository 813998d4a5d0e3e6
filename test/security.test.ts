// Security properties of a running sidecar: file modes, who may connect to the ingest socket
// (checked as another Unix user), what listens beyond loopback, no secret in any output, and key
// files with loose permissions refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'smol-toml';
import { loadConfig } from '../sidecar/common/config.js';
import { StrfryHarness } from './testkit/strfry-harness.js';
import { makeWorkspace, SidecarProcess, LOOPBACK_DEFAULTS, PLUGIN_BIN, CLI_BIN } from './testkit/sidecar-process.js';
import { unsignedEvent, pluginLine, pubkeyN } from './testkit/events.js';
import { sendLines } from './testkit/ingest-client.js';
import { inetSockets, isLoopback } from './testkit/hostile-peer.js';

const run = promisify(execFile);
const NOBODY = 65534;
const NOGROUP = 65534;
const OTHER_GID = 1; // daemon: not the socket's group

const mode = (p: string) => statSync(p).mode & 0o7777;
const octal = (m: number) => m.toString(8).padStart(4, '0');

/** How to run a command as another user, if this system can (tests run as root in CI). */
function asUser(): ((uid: number, gid: number, cmd: string[]) => string) | null {
  if (process.getuid?.() !== 0) return null;
  const probe = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'true']);
  if (probe.status !== 0) return null;
  return (uid, gid, cmd) => {
    const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', ...cmd], { encoding: 'utf8', timeout: 10_000 });
    return (r.stdout ?? '').trim() || `exit ${r.status} ${r.stderr}`;
  };
}

/** A node one-liner that connects to a Unix socket and prints "connected" or the error code. */
const connectCmd = (path: string) => [
  process.execPath,
  '-e',
  `require('net').connect(${JSON.stringify(path)}).on('connect',()=>{console.log('connected');process.exit(0)}).on('error',(e)=>{console.log(e.code);process.exit(0)})`,
];
const readCmd = (path: string) => [
  process.execPath,
  '-e',
  `try{require('fs').readFileSync(${JSON.stringify(path)});console.log('read')}catch(e){console.log(e.code)}`,
];

test('modes: socket 0660 in its group, spool 2770 with group-only files, index and key private; another user cannot connect or read, a group member can connect', {
  timeout: 60_000,
}, async (t) => {
  const ws = makeWorkspace();
  chmodSync(ws.dir, 0o755); // only the modes under test stand between another user and the files
  const runDir = join(ws.dir, 'run');
  mkdirSync(runDir, { mode: 0o755 });
  chmodSync(runDir, 0o755);
  const socketPath = join(runDir, 'ingest.sock');
  writeFileSync(
    ws.configPath,
    stringify({ ...LOOPBACK_DEFAULTS, dataDir: ws.dataDir, socket: { path: socketPath, group: 'nogroup' }, dht: { enabled: false } }),
  );
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  Object.defineProperty(sidecar, 'socketPath', { value: socketPath });
  try {
    // The plugin spools while the sidecar is down: that creates the spool directory and a file.
    const h = new StrfryHarness(PLUGIN_BIN, { env: { ...process.env, NOSTR_BT_CONFIG: ws.configPath } });
    const e = unsignedEvent(pubkeyN(1), { kind: 1, created_at: 1_700_000_000, content: 'spooled' });
    assert.equal((await h.send(pluginLine(e), e.id)).reply.action, 'accept');
    await h.close();
    const spoolDir = join(ws.dataDir, 'spool');
    const spoolFiles = readdirSync(spoolDir).map((f) => join(spoolDir, f));
    assert.ok(spoolFiles.length >= 1);
    assert.equal(mode(spoolDir), 0o2770, `spool dir ${octal(mode(spoolDir))}`);
    for (const f of spoolFiles) assert.equal(mode(f) & 0o007, 0, `spool file ${f} ${octal(mode(f))}: nothing for others`);

    await sidecar.start();
    const st = statSync(socketPath);
    assert.ok(st.isSocket());
    assert.equal(mode(socketPath), 0o660, `socket ${octal(mode(socketPath))}`);
    assert.equal(st.gid, NOGROUP, 'socket.group applied');
    const indexDir = join(ws.dataDir, 'index');
    assert.equal(mode(indexDir) & 0o027, 0, `index dir ${octal(mode(indexDir))}: no group write, nothing for others`);
    for (const f of readdirSync(indexDir)) assert.equal(mode(join(indexDir, f)) & 0o002, 0, `index file ${f}: not world-writable`);
    const keyFile = join(ws.dataDir, 'bridge.key');
    assert.equal(mode(keyFile), 0o600, `bridge.key ${octal(mode(keyFile))}`);
    assert.equal(mode(ws.dataDir) & 0o007, 0, `data dir ${octal(mode(ws.dataDir))}: nothing for others`);

    const as = asUser();
    if (!as) {
      t.diagnostic('SKIPPED the other-user checks: needs root and setpriv (util-linux) to run a client as nobody');
      return;
    }
    assert.equal(as(NOBODY, OTHER_GID, connectCmd(socketPath)), 'EACCES', 'a user outside the socket group cannot connect');
    assert.equal(as(NOBODY, NOGROUP, connectCmd(socketPath)), 'connected', 'a member of socket.group can connect (as strfry does)');
    assert.equal(as(NOBODY, OTHER_GID, readCmd(keyFile)), 'EACCES', 'another user cannot read the bridge key');
    assert.equal(as(NOBODY, OTHER_GID, readCmd(join(indexDir, 'data.mdb'))), 'EACCES', 'another user cannot read the index');
    // The default socket (in the data dir) is out of reach for another user as well.
    const ws2 = makeWorkspace({ dht: { enabled: false } });
    chmodSync(ws2.dir, 0o755);
    const other = new SidecarProcess(ws2.configPath, ws2.dataDir);
    try {
      await other.start();
      assert.equal(as(NOBODY, NOGROUP, connectCmd(other.socketPath)), 'EACCES');
    } finally {
      await other.kill9();
      ws2.cleanup();
    }
  } finally {
    await sidecar.kill9();
    ws.cleanup();
  }
});

test('listeners: status and metrics on loopback by default; beyond loopback only the BitTorrent (TCP, uTP) and DHT ports', {
  timeout: 60_000,
}, async () => {
  const defaults = loadConfig({ env: {}, configPath: undefined, cwd: '/' });
  assert.match(defaults.status.listen, /^127\.0\.0\.1:\d+$/, 'the status/metrics listener defaults to loopback');
  // Public-facing settings as in production (all interfaces for peers and DHT), no bootstrap.
  const ws = makeWorkspace({ dht: { host: '0.0.0.0', bootstrap: [] } });
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  try {
    await sidecar.start();
    const runtime = JSON.parse(readFileSync(join(ws.dataDir, 'sidecar.json'), 'utf8')) as {
      status: string;
      torrentPort: number;
      dhtPort: number;
    };
    assert.equal((await fetch(`http://${runtime.status}/metrics`)).status, 200);
    const socks = inetSockets(sidecar.proc!.pid!);
    const listening = socks.filter((s) => s.proto.startsWith('udp') || s.state === '0A');
    const publicOnes = listening.filter((s) => !isLoopback(s.local));
    const allowed = (s: (typeof socks)[number]) =>
      (s.proto.startsWith('tcp') && s.port === runtime.torrentPort) ||
      (s.proto.startsWith('udp') && (s.port === runtime.torrentPort || s.port === runtime.dhtPort));
    assert.ok(publicOnes.length >= 2, `the peer and DHT ports are public (${JSON.stringify(publicOnes)})`);
    for (const s of publicOnes) assert.ok(allowed(s), `unexpected public listener ${s.proto} ${s.local}:${s.port}`);
    const statusPort = Number(runtime.status.split(':')[1]);
    const status = listening.find((s) => s.proto.startsWith('tcp') && s.port === statusPort);
    assert.ok(status && isLoopback(status.local), 'status/metrics listener is on loopback');
  } finally {
    await sidecar.kill9();
    ws.cleanup();
  }
});

test('no secret in logs (trace level), status, metrics, runtime file or CLI output; key files with loose modes refused with a clear error', {
  timeout: 60_000,
}, async () => {
  const ws = makeWorkspace({ log: { level: 'trace' }, dht: { enabled: false }, bundle: { windowSeconds: 1 } });
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  try {
    await sidecar.start();
    const keyFile = join(ws.dataDir, 'bridge.key');
    const seed = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'hex');
    assert.equal(seed.length, 32);
    const lines = Array.from({ length: 50 }, (_, i) =>
      pluginLine(unsignedEvent(pubkeyN(i % 5), { kind: 1, created_at: 1_700_000_000 + i, content: `n${i}` })),
    );
    await sendLines(sidecar.socketPath, [...lines, 'not json']);
    await sidecar.waitFor((s) => s.bundles?.events === 50);
    const runtime = JSON.parse(readFileSync(join(ws.dataDir, 'sidecar.json'), 'utf8')) as { status: string };
    const outputs: Record<string, string> = {
      status: await (await fetch(`http://${runtime.status}/status`)).text(),
      metrics: await (await fetch(`http://${runtime.status}/metrics`)).text(),
      healthz: await (await fetch(`http://${runtime.status}/healthz`)).text(),
      runtimeFile: readFileSync(join(ws.dataDir, 'sidecar.json'), 'utf8'),
      cliStatus: (await run(process.execPath, [CLI_BIN, '--config', ws.configPath, 'status', '--table'])).stdout,
      cliKey: (await run(process.execPath, [CLI_BIN, '--config', ws.configPath, 'key'])).stdout,
    };
    await sidecar.stop();
    outputs.logs = sidecar.stderr;
    assert.match(sidecar.stderr, /"level":20/, 'debug and trace logs were on');
    const forbidden = [seed.toString('hex'), seed.toString('base64'), seed.toString('base64url')];
    for (const [what, text] of Object.entries(outputs)) for (const f of forbidden) assert.ok(!text.includes(f), `no secret in ${what}`);

    // Loose modes: the sidecar refuses to start and says how to fix it; so does `nostr-bt key`.
    chmodSync(keyFile, 0o640);
    const refused = new SidecarProcess(ws.configPath, ws.dataDir);
    await assert.rejects(refused.start(), /mode 0640: a secret key file must be 0600 or 0400 \(chmod 600/);
    const cli = spawnSync(process.execPath, [CLI_BIN, '--config', ws.configPath, 'key'], { encoding: 'utf8' });
    assert.equal(cli.status, 1);
    assert.match(cli.stderr, /chmod 600/);
    for (const f of forbidden) assert.ok(!refused.stderr.includes(f) && !cli.stderr.includes(f), 'the error does not echo the key');
    // A Nostr key file (nsec) readable by others: refused as well, its content never printed.
    chmodSync(keyFile, 0o600);
    const nsecFile = join(ws.dir, 'nsec');
    writeFileSync(nsecFile, 'nsec1' + 'q'.repeat(58) + '\n', { mode: 0o604 });
    chmodSync(nsecFile, 0o604);
    writeFileSync(ws.configPath, readFileSync(ws.configPath, 'utf8') + `\n[bridge]\nnostrKeyFile = "${nsecFile}"\n`);
    const refused2 = new SidecarProcess(ws.configPath, ws.dataDir);
    await assert.rejects(refused2.start(), /nsec has mode 0604: a secret key file must be 0600/);
    assert.ok(!refused2.stderr.includes('q'.repeat(58)));
  } finally {
    await sidecar.kill9();
    ws.cleanup();
  }
});
