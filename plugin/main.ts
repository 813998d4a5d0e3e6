#!/usr/bin/env node
// nostr-bt-plugin: the strfry write-policy plugin. One reply per input line, written at once;
// accepted lines are then handed to the sidecar (socket, or spool on disk), never awaited.
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createLogger } from '../sidecar/common/log.js';
import { readLineFields, salvageId } from './line-fields.js';
import { SpoolWriter } from './spool-writer.js';
import { SidecarLink } from './sidecar-link.js';
import type { InnerPlugin } from './inner-plugin.js';
import { loadPluginConfig, logStart } from './plugin-config.js';

// strfry passes no arguments: the flag parser (commander) loads only for an operator's command line.
const flags = process.argv.length > 2 ? (await import('./cli-flags.js')).parsePluginFlags(process.argv) : {};

const log = createLogger('nostr-bt-plugin', (process.env.NOSTR_BT_PLUGIN_LOG_LEVEL as 'info') ?? 'info');

const started = loadPluginConfig({ configPath: flags.config, dataDir: flags.dataDir });
const config = started.mode === 'reject-all' ? null : started.config;
/** Set when every event is rejected: a broken config that may wrap a policy (plugin-config.ts). */
const configError = started.mode === 'reject-all' ? started.error : null;
if (config?.plugin.logLevel) log.level = config.plugin.logLevel;
logStart(started, log);

const spool = config ? new SpoolWriter(config.spool.dir, config.spool, log) : null;
const link =
  config && spool
    ? new SidecarLink(
        config.socket.path,
        spool,
        { maxUnacked: config.plugin.maxUnacked, forwardDelayMs: config.plugin.forwardDelayMs },
        log,
      )
    : null;
// execa loads only when there is an inner plugin to run.
const inner: InnerPlugin | null =
  config && config.plugin.inner
    ? new (await import('./inner-plugin.js')).InnerPlugin(
        config.plugin.inner,
        {
          timeoutMs: config.plugin.innerTimeoutMs,
          failMode: config.plugin.innerFailMode,
          failMessage: config.plugin.innerFailMessage,
        },
        log,
      )
    : null;
const forwardAll = !config || config.plugin.forwardSourceTypes.includes('*');
const forwardTypes = new Set(config?.plugin.forwardSourceTypes ?? []);

let malformed = 0;
let lastMalformedLog = 0;
let answered = 0;

const stdoutFull = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes one answer, whole. stdout is a non-blocking pipe: when the reader is behind and the pipe
 * is full, write(2) takes part of the line or fails with EAGAIN; wait (the reader must take it)
 * rather than lose or cut an answer.
 */
function reply(text: string): void {
  const line = text + '\n';
  let off = 0;
  // Written as a string: no Buffer per answer (garbage the bare readline plugin does not make).
  // Only a partial write or a full pipe takes the bytes below.
  try {
    off = writeSync(1, line);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
      log.warn({ code: (err as NodeJS.ErrnoException).code }, 'stdout closed; exiting');
      void shutdown(0);
      return;
    }
  }
  if (off === line.length && off === Buffer.byteLength(line)) {
    answered++;
    return;
  }
  const buf = Buffer.from(line);
  while (off < buf.length) {
    try {
      off += writeSync(1, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(stdoutFull, 0, 0, 1);
        continue;
      }
      // strfry went away (EPIPE): nothing left to answer.
      log.warn({ code: (err as NodeJS.ErrnoException).code }, 'stdout closed; exiting');
      void shutdown(0);
      return;
    }
  }
  answered++;
}

function noteMalformed(line: string, why: string): void {
  malformed++;
  const now = Date.now();
  if (now - lastMalformedLog > 5000) {
    lastMalformedLog = now;
    log.warn({ why, malformed, bytes: line.length, head: line.slice(0, 120) }, 'malformed plugin input line skipped');
  }
}

function forward(line: string, sourceType: string): void {
  if (link && (forwardAll || forwardTypes.has(sourceType))) link.forward(line);
}

/** The whole hot path when no inner plugin is configured. */
function handleLine(line: string): void {
  const fields = readLineFields(line);
  if (fields === null) {
    const id = salvageId(line);
    if (id !== null) reply(`{"id":"${id}","action":"reject","msg":"error: malformed plugin input"}`);
    noteMalformed(line, id === null ? 'no readable event id' : 'not valid JSON');
    return;
  }
  const idJson = JSON.stringify(fields.id);
  if (configError !== null) {
    reply(`{"id":${idJson},"action":"reject","msg":"error: relay write policy is misconfigured"}`);
    return;
  }
  reply(`{"id":${idJson},"action":"accept"}`);
  forward(line, fields.sourceType);
}

async function handleLineWithInner(line: string): Promise<void> {
  const fields = readLineFields(line);
  if (fields === null || configError !== null) {
    handleLine(line);
    return;
  }
  const verdict = await inner!.decide(line, fields.id);
  reply(verdict.reply);
  if (verdict.accepted) forward(line, fields.sourceType);
}

let shuttingDown = false;
async function shutdown(code: number): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  inner?.stop();
  await link?.close(500);
  // Lines count as spooled only once written: wait for the write in flight, then write the rest.
  await spool?.close(2000);
  logSummary();
  process.exit(code);
}

/** What became of this run's lines; drops are what reconciliation (backfill) has to recover. */
function logSummary(): void {
  const summary = {
    answered,
    malformed,
    forwarded: link?.stats.sent ?? 0,
    acknowledged: link?.stats.acked ?? 0,
    spooled: spool?.stats.spooled ?? 0,
    dropped: spool?.stats.dropped ?? 0,
    /** Sent to the sidecar but unacknowledged at a disconnect, with no spool room: maybe archived. */
    droppedAfterSend: spool?.stats.droppedAfterSend ?? 0,
    spoolWriteErrors: spool?.stats.writeErrors ?? 0,
  };
  if (summary.dropped + summary.droppedAfterSend > 0)
    log.warn(summary, 'plugin stopping; lines dropped because the spool was full or unwritable (reconciliation backfill recovers them)');
  else log.info(summary, 'plugin stopping');
}

link?.start();
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
if (inner) {
  // strfry sends one line at a time, but keep order even if a client pipelines.
  let chain: Promise<void> = Promise.resolve();
  rl.on('line', (line) => {
    chain = chain.then(() => handleLineWithInner(line)).catch((err) => log.error({ err }, 'inner plugin handling failed'));
  });
  rl.on('close', () => void chain.then(() => shutdown(0)));
} else {
  rl.on('line', handleLine);
  rl.on('close', () => void shutdown(0));
}
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));
