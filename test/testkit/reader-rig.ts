// Bridges for reader tests: real sidecars (child processes) on a local DHT, fed through the real
// plugin the way strfry feeds it, and a wait for "archived and published" that looks at the
// sidecar's own index (read-only) so a test knows when the DHT holds the latest pointers.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { NostrEvent } from '../../sidecar/formats/nostr-event.js';
import { authorSalt } from '../../sidecar/formats/pointer-item.js';
import { Store } from '../../sidecar/index/store.js';
import { makeWorkspace, SidecarProcess, PLUGIN_BIN, CLI_BIN, sleep } from './sidecar-process.js';
import { StrfryHarness } from './strfry-harness.js';
import { pluginLine } from './events.js';

const execFileP = promisify(execFile);

export interface Bridge {
  sidecar: SidecarProcess;
  ws: ReturnType<typeof makeWorkspace>;
  harness: StrfryHarness;
  /** The bridge's public key, hex. */
  key: string;
  /** Sends events through the plugin (as strfry would), each answered `accept`. */
  feed(events: NostrEvent[]): Promise<void>;
  /** Waits until `stored` events are indexed, all in active bundles, and every author's pointer is in the DHT. */
  waitPublished(stored: number, authors: string[], timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startBridge(bootstrap: string[], extra: Record<string, unknown> = {}): Promise<Bridge> {
  const ws = makeWorkspace({
    ...extra,
    // Local nodes are all bittorrent-dht (no libtorrent bans): pace per node far above Mainline's 5/s.
    dht: { bootstrap, putsPerSecond: 500, maxPacketsPerSecondPerNode: 500 },
    bundle: { windowSeconds: 1, rewriteIntervalSeconds: 1 },
  });
  const sidecar = new SidecarProcess(ws.configPath, ws.dataDir);
  let status: Awaited<ReturnType<SidecarProcess['status']>>;
  try {
    await sidecar.start(30_000); // not measured: generous on a loaded machine
    status = await sidecar.waitFor((s) => (s.dht?.nodes ?? 0) > 0 && Boolean(s.bridge?.publicKey));
  } catch (err) {
    await sidecar.kill9();
    ws.cleanup();
    throw err;
  }
  const harness = new StrfryHarness(PLUGIN_BIN, { env: { ...process.env, NOSTR_BT_CONFIG: ws.configPath }, timeoutMs: 10_000 });
  return {
    sidecar,
    ws,
    harness,
    key: status.bridge!.publicKey,
    feed: async (events) => {
      for (const e of events) {
        const { reply } = await harness.send(pluginLine(e), e.id);
        if (reply.action !== 'accept') throw new Error(`plugin answered ${JSON.stringify(reply)}`);
      }
    },
    waitPublished: async (stored, authors, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      await sidecar.waitFor(
        // Every stored event is in a bundle (a superseded version may stay in an older bundle
        // until its next merge, so bundles may hold more events than the index).
        (s) =>
          s.events.stored === stored &&
          (s.bundles as { pendingEvents?: number } | undefined)?.pendingEvents === 0 &&
          (s.bundles?.events ?? 0) >= stored &&
          s.bundles?.pendingRewrites === 0 &&
          s.pointers?.dirtyAuthors === 0,
        timeoutMs,
      );
      const store = Store.open(join(ws.dataDir, 'index'), { readOnly: true });
      let pending: string[] = [];
      try {
        while (Date.now() < deadline) {
          pending = authors.filter((a) => {
            const r = store.pointers.get(authorSalt(a).toString('hex'));
            return !r || r.putAt === 0 || r.putAt < r.changedAt || r.nodes === 0;
          });
          const dirty = store.pointers.hasDirty();
          if (pending.length === 0 && !dirty) return;
          await sleep(50);
        }
        const sample = pending.slice(0, 3).map((a) => ({ author: a, rec: store.pointers.get(authorSalt(a).toString('hex')) }));
        throw new Error(`pointers not all published within ${timeoutMs} ms: ${pending.length} pending, e.g. ${JSON.stringify(sample)}`);
      } finally {
        await store.close();
      }
    },
    stop: async () => {
      await harness.close();
      await sidecar.stop();
      ws.cleanup();
    },
  };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `nostr-bt <args>` as a separate process (no config, no env config) and collects its output. */
export async function runCli(args: string[], timeoutMs = 60_000): Promise<CliRun> {
  const env = { ...process.env };
  delete env.NOSTR_BT_CONFIG;
  delete env.NOSTR_BT_DATA_DIR;
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI_BIN, ...args], {
      env,
      timeout: timeoutMs,
      maxBuffer: 256 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; killed?: boolean };
    if (typeof e.code !== 'number') throw new Error(`nostr-bt ${args[0]} did not finish: ${String(e.code)} ${e.stderr ?? ''}`);
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export function parseJsonl(text: string): NostrEvent[] {
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as NostrEvent);
}

/** The last line of stderr as JSON (`--summary json`). */
export function lastJson<T>(stderr: string): T {
  const lines = stderr.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}
