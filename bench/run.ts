// `npm run bench [-- --quick]`: runs every benchmark in turn, each in its own process (so one
// cannot warm up or slow down the next), passing the arguments through.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const BENCHES = ['plugin-bench.js', 'ingest-bench.js', 'bundle-bench.js', 'scale-bench.js', 'reader-bench.js', 'offload-bench.js'];
const args = process.argv.slice(2);
let failed = 0;
let current: ReturnType<typeof spawn> | null = null;

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    // The benchmark cleans up after itself on SIGTERM.
    current?.kill('SIGTERM');
    process.exitCode = 130;
  });
}

for (const b of BENCHES) {
  if (process.exitCode === 130) break;
  process.stdout.write(`\n=== ${b} ${args.join(' ')} ===\n`);
  const code = await new Promise<number | null>((resolve) => {
    current = spawn(process.execPath, [join(here, b), ...args], { stdio: 'inherit' });
    current.once('exit', (c) => resolve(c));
    current.once('error', () => resolve(1));
  });
  current = null;
  if (code !== 0) failed++;
}
if (failed > 0) process.exitCode = process.exitCode || 1;
