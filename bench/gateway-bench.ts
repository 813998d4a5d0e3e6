// Gateway benchmark: the BEP-19 web seed of a 100 MB bundle (20 MB in --quick) against Debian's
// nginx serving the same data file from disk (a hard link to it), and the pointer endpoint's
// requests/s with p50/p99 against nginx serving the same JSON bytes as a static file.
//
//   The sidecar (a child process, as an operator runs it) archives one author's events into one
//   window bundle and serves it on its gateway; nginx is started here on loopback with its own
//   config in a temp dir (one worker process: the gateway serves HTTP on one thread), never the
//   system service. Both read the same inode, so the page cache is shared; a warm-up read of
//   each comes first and checks the bytes are identical. Rounds alternate which server goes first.
//   Figures are medians over the rounds; the spread (min–max) and the load average are printed.
//   Reads: whole-file GETs on 2 connections (what libtorrent does with a big request queue) and
//   16 KiB Range requests on 8 keep-alive connections (what WebTorrent sends: one per block).
//   The load generator is node:http in this process, the same for both servers.
// Loopback only. Prints figures; never asserts timings.
//
//   node dist/bench/gateway-bench.js [--quick]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { getPriority, loadavg } from 'node:os';
import { join } from 'node:path';
import { pubkeyN } from '../test/testkit/events.js';
import { archive, freeTcpPort, httpGet, startGatewayRig } from '../test/testkit/gateway-rig.js';
import {
  figure,
  fmt,
  log,
  makeTempDir,
  median,
  onCleanup,
  parseArgs,
  percentile,
  printFigures,
  runMain,
  sleep,
  type Figure,
} from './common.js';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'];
const CONTENT_BYTES = 8000;
const BLOCK = 16 * 1024;
const MB = 1e6;

interface Job {
  path: string;
  headers?: Record<string, string>;
}

interface LoadResult {
  bytes: number;
  requests: number;
  seconds: number;
  /** Per-request latency in ms, when asked for. */
  latencies: number[];
  statuses: Map<number, number>;
}

/**
 * Runs jobs on `conns` keep-alive connections until `next` returns null; the bodies are counted
 * and dropped. A request that fails ends the run with an error (the benchmark measures serving).
 */
async function load(port: number, conns: number, next: () => Job | null, keepLatencies = false): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: conns, maxFreeSockets: conns });
  const out: LoadResult = { bytes: 0, requests: 0, seconds: 0, latencies: [], statuses: new Map() };
  const one = (job: Job) =>
    new Promise<void>((resolve, reject) => {
      const t0 = performance.now();
      const req = request({ host: '127.0.0.1', port, path: job.path, headers: job.headers, agent }, (res) => {
        out.statuses.set(res.statusCode!, (out.statuses.get(res.statusCode!) ?? 0) + 1);
        res.on('data', (c: Buffer) => (out.bytes += c.length));
        res.on('end', () => {
          out.requests++;
          if (keepLatencies) out.latencies.push(performance.now() - t0);
          resolve();
        });
        res.on('error', reject);
      });
      req.setTimeout(60_000, () => req.destroy(new Error(`no answer to ${job.path} within 60 s`)));
      req.on('error', reject);
      req.end();
    });
  const t0 = performance.now();
  try {
    await Promise.all(
      Array.from({ length: conns }, async () => {
        for (let job = next(); job !== null; job = next()) await one(job);
      }),
    );
  } finally {
    agent.destroy();
  }
  out.seconds = (performance.now() - t0) / 1000;
  return out;
}

function expectOnly(r: LoadResult, status: number, what: string): void {
  const other = [...r.statuses].filter(([s]) => s !== status);
  if (other.length > 0) throw new Error(`${what}: statuses ${JSON.stringify([...r.statuses])}, expected only ${status}`);
}

interface Nginx {
  port: number;
  stop(): Promise<void>;
}

/** nginx on 127.0.0.1 serving `root`, from its own config and prefix in a temp dir, at CPU priority `nice`. */
async function startNginx(bin: string, root: string, nice: number): Promise<Nginx> {
  const dir = makeTempDir('nostr-bt-bench-nginx-');
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d));
  const port = await freeTcpPort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    [
      // As root the worker would switch to www-data, which cannot read our 0700 temp dirs.
      process.getuid?.() === 0 ? 'user root;' : '',
      'worker_processes 1;',
      'daemon off;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      '  sendfile on; tcp_nopush on; keepalive_requests 1000000;',
      `  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;`,
      `  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
      '  types { application/octet-stream data; application/json json; }',
      `  server { listen 127.0.0.1:${port}; root ${root}; }`,
      '}',
      '',
    ].join('\n'),
  );
  const check = spawnSync(bin, ['-t', '-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx -t failed: ${check.stderr}`);
  // nice(1) execs nginx in its own process, so the pid is nginx's master.
  const child: ChildProcess = spawn('nice', ['-n', String(nice), bin, '-p', dir, '-c', conf, '-e', join(dir, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // SIGTERM: nginx's master stops its worker and exits (SIGKILL would leave the worker behind).
  const kill = () => child.exitCode === null && child.signalCode === null && child.kill('SIGTERM');
  process.once('exit', kill);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    kill();
    await Promise.race([exited, sleep(10_000)]);
    process.off('exit', kill);
  };
  onCleanup(stop);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    try {
      await httpGet(`http://127.0.0.1:${port}/`, { timeoutMs: 2000 });
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`nginx did not answer on ${port}: ${stderr}`);
      await sleep(100);
    }
  }
  return { port, stop };
}

/** Hash of one whole-file GET (and its length): the two servers must serve the same bytes. */
function digestOf(port: number, path: string): Promise<{ sha: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`${path}: status ${res.statusCode}`));
      const h = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        h.update(c);
        bytes += c.length;
      });
      res.on('end', () => resolve({ sha: h.digest('hex'), bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function spread(xs: number[], digits = 0): string {
  return `${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)}`;
}

async function main(): Promise<void> {
  const args = parseArgs();
  const bin = NGINX.find((p) => existsSync(p));
  if (!bin) throw new Error('nginx is not installed (Debian: apt-get install -y nginx); it is the baseline of this benchmark');
  const targetBytes = (args.quick ? 20 : 100) * 1024 * 1024;
  const rounds = args.quick ? 2 : 4;
  const rangeBytes = (args.quick ? 4 : 16) * 1024 * 1024;
  const pointerSeconds = args.quick ? 2 : 5;
  log(
    `load average at the start ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );

  // One window bundle holds everything: a window long enough to ingest into, and events sent
  // right after a window starts (windows are aligned to multiples of windowSeconds).
  const windowSeconds = 30;
  const rig = await startGatewayRig(
    { requestsPerSecondPerIp: 1_000_000, burstPerIp: 1_000_000, maxConnectionsPerIp: 1000 },
    { dhtNodes: 4, bundle: { windowSeconds, windowMaxBytes: 2 * targetBytes } },
  );
  onCleanup(() => rig.stop());
  const author = pubkeyN(9001);
  const perEvent = CONTENT_BYTES + 300;
  const events = Math.ceil(targetBytes / perEvent);
  const inWindow = Date.now() % (windowSeconds * 1000);
  if (inWindow > 2000) await sleep(windowSeconds * 1000 - inWindow + 200);
  const t0 = performance.now();
  const st = await archive(rig, [author], events, CONTENT_BYTES);
  log(`archived ${fmt(events)} events of ${CONTENT_BYTES} B content in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const ih = st.bundles!.newest!;
  const dataPath = join(rig.dataDir, 'bundles', `${ih}.data`);
  const size = statSync(dataPath).size;
  log(
    `bundle ${ih}: ${fmt(size / MB, 1)} MB${size < 0.9 * targetBytes ? ' (the events were split over two windows: a smaller bundle than asked for)' : ''}`,
  );

  const root = makeTempDir('nostr-bt-bench-nginx-root-');
  linkSync(dataPath, join(root, `${ih}.data`));
  const pointer = await httpGet(`${rig.base}/pointer/${author}`);
  if (pointer.status !== 200) throw new Error(`/pointer/${author}: ${pointer.status} ${pointer.body.toString().trim()}`);
  writeFileSync(join(root, 'pointer.json'), pointer.body);
  // The sidecar lowers its own CPU priority (service.nice, 10 by default): nginx gets the same,
  // or on a busy machine the comparison measures the scheduler.
  const nice = getPriority(rig.sidecar.proc!.pid!);
  const nginx = await startNginx(bin, root, nice);
  log(
    `nginx ${spawnSync(bin, ['-v'], { encoding: 'utf8' })
      .stderr.trim()
      .replace(/^nginx version: /, '')} on 127.0.0.1:${nginx.port} (1 worker, sendfile on, nice ${nice} like the sidecar)`,
  );

  const servers = {
    gateway: { port: rig.port, data: `/webseed/${ih}/`, pointer: `/pointer/${author}` },
    nginx: { port: nginx.port, data: `/${ih}.data`, pointer: '/pointer.json' },
  };
  const a = await digestOf(servers.gateway.port, servers.gateway.data);
  const b = await digestOf(servers.nginx.port, servers.nginx.data);
  if (a.sha !== b.sha || a.bytes !== size)
    throw new Error(`the gateway served ${a.bytes} B (${a.sha}), nginx ${b.bytes} B (${b.sha}), the file has ${size} B`);

  type Name = keyof typeof servers;
  const whole: Record<Name, number[]> = { gateway: [], nginx: [] };
  const ranged: Record<Name, number[]> = { gateway: [], nginx: [] };
  const rps: Record<Name, number[]> = { gateway: [], nginx: [] };
  const p50: Record<Name, number[]> = { gateway: [], nginx: [] };
  const p99: Record<Name, number[]> = { gateway: [], nginx: [] };
  for (let r = 0; r < rounds; r++) {
    const order: Name[] = r % 2 === 0 ? ['nginx', 'gateway'] : ['gateway', 'nginx'];
    for (const name of order) {
      const s = servers[name];
      let left = 4;
      const w = await load(s.port, 2, () => (left-- > 0 ? { path: s.data } : null));
      expectOnly(w, 200, `${name} whole file`);
      whole[name].push(w.bytes / MB / w.seconds);

      let at = 0;
      const rg = await load(s.port, 8, () => {
        if (at >= rangeBytes) return null;
        const job = { path: s.data, headers: { range: `bytes=${at}-${Math.min(size, at + BLOCK) - 1}` } };
        at += BLOCK;
        return job;
      });
      expectOnly(rg, 206, `${name} ranges`);
      ranged[name].push(rg.bytes / MB / rg.seconds);

      const until = performance.now() + pointerSeconds * 1000;
      const pt = await load(s.port, 32, () => (performance.now() < until ? { path: s.pointer } : null), true);
      expectOnly(pt, 200, `${name} pointer`);
      const sorted = Float64Array.from(pt.latencies).sort();
      rps[name].push(pt.requests / pt.seconds);
      p50[name].push(percentile(sorted, 50));
      p99[name].push(percentile(sorted, 99));
      log(
        `round ${r + 1} ${name.padEnd(7)}: whole file ${fmt(whole[name].at(-1)!)} MB/s, 16 KiB ranges ${fmt(ranged[name].at(-1)!)} MB/s, ` +
          `pointer ${fmt(rps[name].at(-1)!)} req/s (p50 ${fmt(p50[name].at(-1)!, 2)} ms, p99 ${fmt(p99[name].at(-1)!, 2)} ms), load ${loadavg()[0]!.toFixed(2)}`,
      );
    }
  }
  const m = (xs: number[]) => median(xs);
  log('');
  log(
    `web seed, whole file:   gateway ${fmt(m(whole.gateway))} MB/s (${spread(whole.gateway)}), nginx ${fmt(m(whole.nginx))} MB/s (${spread(whole.nginx)}): ${(m(whole.gateway) / m(whole.nginx)).toFixed(2)}×`,
  );
  log(
    `web seed, 16 KiB Range: gateway ${fmt(m(ranged.gateway))} MB/s (${spread(ranged.gateway)}), nginx ${fmt(m(ranged.nginx))} MB/s (${spread(ranged.nginx)}): ${(m(ranged.gateway) / m(ranged.nginx)).toFixed(2)}×`,
  );
  log(
    `pointer:                gateway ${fmt(m(rps.gateway))} req/s (${spread(rps.gateway)}), p50 ${fmt(m(p50.gateway), 2)} ms, p99 ${fmt(m(p99.gateway), 2)} ms; nginx static ${fmt(m(rps.nginx))} req/s (${spread(rps.nginx)})`,
  );
  log(
    `load average at the end ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  const figures: Figure[] = [
    figure(`web seed ${fmt(size / MB)} MB bundle, whole-file GETs vs nginx`, m(whole.gateway), 'MB/s', m(whole.nginx), '≥ 0.8×'),
    figure('web seed 16 KiB Range requests (WebTorrent) vs nginx', m(ranged.gateway), 'MB/s', m(ranged.nginx), '≥ 0.8×'),
    figure('pointer endpoint, 32 connections vs nginx static', m(rps.gateway), 'req/s', m(rps.nginx)),
    figure('pointer endpoint p50', m(p50.gateway), 'ms', m(p50.nginx)),
    figure('pointer endpoint p99', m(p99.gateway), 'ms', m(p99.nginx)),
  ];
  printFigures('gateway', figures, { mode: args.quick ? 'quick' : 'full', bytes: size, rounds, load: loadavg()[0] });
}

runMain(main);
