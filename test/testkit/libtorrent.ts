// Runs the independent libtorrent peer (test/testkit/libtorrent_peer.py) from tests.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DIST } from './sidecar-process.js';

const run = promisify(execFile);
export const LT_SCRIPT = join(DIST, '../test/testkit/libtorrent_peer.py');

export interface LtFetchResult {
  ok: boolean;
  seconds: number;
  infoHash: string;
  payloadDownloaded: number;
  files: string[];
  name: string;
}

export async function ltFetch(opts: {
  torrent?: string;
  magnet?: string;
  save: string /** Omitted: the torrent's web seeds only. */;
  peerPort?: number;
  file?: number;
  timeoutSec?: number;
}): Promise<LtFetchResult> {
  const args = [LT_SCRIPT, 'fetch', '--save', opts.save, '--timeout', String(opts.timeoutSec ?? 30)];
  if (opts.peerPort !== undefined) args.push('--peer', String(opts.peerPort));
  if (opts.torrent) args.push('--torrent', opts.torrent);
  if (opts.magnet) args.push('--magnet', opts.magnet);
  if (opts.file !== undefined) args.push('--file', String(opts.file));
  try {
    const { stdout } = await run('/usr/bin/python3', args, { timeout: ((opts.timeoutSec ?? 30) + 15) * 1000 });
    return JSON.parse(stdout.trim().split('\n').pop()!) as LtFetchResult;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const last = e.stdout?.trim().split('\n').pop();
    if (last?.startsWith('{')) return JSON.parse(last) as LtFetchResult;
    throw new Error(`libtorrent peer failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

export interface LtDhtGetResult {
  ok: boolean;
  seq?: number;
  sig?: string;
  v?: Record<string, string | number>;
  error?: string;
}

/** libtorrent joins the local DHT and reads a mutable item by key + salt (it checks the signature). */
export async function ltDhtGet(opts: {
  keyHex: string;
  saltHex: string;
  bootstrap: string[];
  timeoutSec?: number;
}): Promise<LtDhtGetResult> {
  const args = [
    LT_SCRIPT,
    'dht-get',
    '--key',
    opts.keyHex,
    '--salt',
    opts.saltHex,
    '--bootstrap',
    opts.bootstrap.join(','),
    '--timeout',
    String(opts.timeoutSec ?? 20),
  ];
  try {
    const { stdout } = await run('/usr/bin/python3', args, { timeout: ((opts.timeoutSec ?? 20) + 15) * 1000 });
    return JSON.parse(stdout.trim().split('\n').pop()!) as LtDhtGetResult;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const last = e.stdout?.trim().split('\n').pop();
    if (last?.startsWith('{')) return JSON.parse(last) as LtDhtGetResult;
    throw new Error(`libtorrent DHT get failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}
