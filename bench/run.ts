// `npm run bench [-- --quick] [-- --only=a,b]`: runs every benchmark in turn, each in its own
// process (so one cannot warm up or slow down the next), passing the other arguments through,
// then writes bench/RESULTS.md: one row per figure (measured, in-run baseline, ratio, goal) and
// the machine it ran on. Every benchmark ends its output with one JSON line of figures
// (bench/common.ts printFigures); that line is what the table is made of.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Figure } from './common.js';

const here = dirname(fileURLToPath(import.meta.url));
/** In data-flow order: plugin → relay (strfry stand-in) → ingest → bundle → scale → pointers → discovery → mirror → restore → reader → library → gateway → offload → browser offload → media → media offload → backfill → faults. */
const BENCHES = [
  'plugin',
  'relay',
  'ingest',
  'bundle',
  'scale',
  'pointer',
  'discovery',
  'mirror',
  'restore',
  'reader',
  'library',
  'gateway',
  'offload',
  'browser-offload',
  'media',
  'media-offload',
  'index-rows',
  'backfill',
  'fault',
];

interface Outcome {
  bench: string;
  code: number | null;
  seconds: number;
  mode: string;
  figures: Figure[];
  note?: string;
  /** 1-minute load average when it ended (other work on the machine slows every benchmark). */
  load?: number;
}

const argv = process.argv.slice(2);
const only = argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const passThrough = argv.filter((a) => !a.startsWith('--only=') && !a.startsWith('--results='));
const resultsPath = argv.find((a) => a.startsWith('--results='))?.slice('--results='.length) ?? resolve(here, '../../bench/RESULTS.md');
const quick = passThrough.includes('--quick');
let current: ReturnType<typeof spawn> | null = null;
let interrupted = false;

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    interrupted = true;
    current?.kill('SIGTERM'); // each benchmark cleans up after itself on SIGTERM
  });
}

/** Runs one benchmark, echoing its output, and returns its figures line. */
function runOne(name: string): Promise<Outcome> {
  const file = join(here, `${name}-bench.js`);
  if (!existsSync(file)) return Promise.resolve({ bench: name, code: null, seconds: 0, mode: '', figures: [], note: 'not built' });
  const started = Date.now();
  return new Promise((done) => {
    let last: { figures?: Figure[]; mode?: string } | null = null;
    let buffer = '';
    current = spawn(process.execPath, [file, ...passThrough], { stdio: ['ignore', 'pipe', 'inherit'] });
    current.stdout!.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith('{"bench"')) {
          try {
            last = JSON.parse(line) as typeof last;
          } catch {
            /* not the figures line */
          }
        }
      }
    });
    const finish = (code: number | null) =>
      done({
        bench: name,
        code,
        seconds: (Date.now() - started) / 1000,
        mode: last?.mode ?? (quick ? 'quick' : 'full'),
        figures: last?.figures ?? [],
      });
    current.once('exit', finish);
    current.once('error', () => finish(1));
  });
}

/** Whether a measured figure meets a goal written as "≥ 20000 ...", "<= 1 h", "≥ 0.8×", "== 5"; null if the goal is not of that form. */
export function meetsGoal(f: Figure): boolean | null {
  const m = f.goal?.match(/^\s*(>=|<=|==|<|>|≥|≤)\s*([0-9][0-9,_]*(?:\.[0-9]+)?)\s*(×|x\b)?/);
  if (!m || !Number.isFinite(f.value)) return null;
  const target = Number(m[2]!.replace(/[,_]/g, ''));
  const v = m[3] ? f.ratio : f.value;
  if (v === null || v === undefined) return null;
  switch (m[1]) {
    case '>=':
    case '≥':
      return v >= target;
    case '<=':
    case '≤':
      return v <= target;
    case '<':
      return v < target;
    case '>':
      return v > target;
    default:
      return v === target;
  }
}

function cell(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return Math.abs(n) >= 1000 ? Math.round(n).toLocaleString('en-US') : String(n);
}

function fmtDuration(s: number): string {
  return s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${s.toFixed(1)} s`;
}

const startLoad = loadavg();

function table(outcomes: Outcome[], started: Date): string {
  const cpu = cpus();
  const lines = [
    '# Benchmark results',
    '',
    `Written by \`npm run bench${quick ? ' -- --quick' : ''}\` on ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC ` +
      `(${quick ? 'quick' : 'full'} mode). Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ` +
      `${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory, Node ${process.version}, load average at the end ${loadavg()[0]!.toFixed(2)}. ` +
      'Every figure comes from a benchmark under bench/ (loopback only); the baseline is measured in the same run, and the ratio is measured ÷ baseline.',
    '',
    '| benchmark | figure | measured | baseline | ratio | goal | met |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const o of outcomes) {
    if (o.figures.length === 0) {
      const why = o.note ?? (o.code === 0 ? 'printed no figures' : `failed (exit ${o.code})`);
      lines.push(`| ${o.bench} | — | ${why} | | | | |`);
      continue;
    }
    for (const f of o.figures) {
      const met = meetsGoal(f);
      lines.push(
        `| ${o.bench} | ${f.name.replace(/\|/g, '\\|')} | ${cell(f.value)} ${f.unit} | ${cell(f.baseline)} | ${f.ratio ?? '—'} | ${(f.goal ?? '').replace(/\|/g, '\\|')} | ${met === null ? '' : met ? 'yes' : '**no**'} |`,
      );
    }
  }
  lines.push('', '| benchmark | mode | exit | wall seconds | load average at its end |', '|---|---|---|---|---|');
  for (const o of outcomes)
    lines.push(`| ${o.bench} | ${o.mode} | ${o.code ?? o.note ?? '—'} | ${o.seconds.toFixed(0)} | ${o.load?.toFixed(2) ?? ''} |`);
  const totalS = (Date.now() - started.getTime()) / 1000;
  lines.push(`| **total** | ${quick ? 'quick' : 'full'} | | ${totalS.toFixed(0)} | |`);
  lines.push(
    '',
    `Total run time ${fmtDuration(totalS)} (goal, issue 9: ${quick ? 'under 2 min for --quick' : 'under 30 min for the full run'}); ` +
      `load average at the start ${startLoad.map((x) => x.toFixed(2)).join(' ')}, at the end ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')} (1, 5, 15 min; other work on this machine counts).`,
  );
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  const started = new Date();
  const outcomes: Outcome[] = [];
  for (const name of BENCHES) {
    if (only && !only.includes(name)) continue;
    if (interrupted) break;
    process.stdout.write(`\n=== ${name}-bench ${passThrough.join(' ')} ===\n`);
    const o = { ...(await runOne(name)), load: loadavg()[0]! };
    outcomes.push(o);
    current = null;
    process.stdout.write(
      `=== ${name}-bench: exit ${o.code ?? o.note}, ${o.seconds.toFixed(1)} s wall (load average ${o.load.toFixed(2)}) ===\n`,
    );
  }
  process.stdout.write(
    `\n${outcomes.map((o) => `${o.bench} ${o.seconds.toFixed(0)} s`).join(', ')}; total ${fmtDuration((Date.now() - started.getTime()) / 1000)}\n`,
  );
  writeFileSync(resultsPath, table(outcomes, started));
  process.stdout.write(`\nresults written to ${resultsPath}\n`);
  if (interrupted) process.exitCode = 130;
  else if (outcomes.some((o) => o.code !== 0 && o.note === undefined)) process.exitCode = 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
