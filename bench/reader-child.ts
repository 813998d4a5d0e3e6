// A reader in its own process for the benchmarks: `node dist/bench/reader-child.js '<json>'`.
// Imports only the reader (not the sidecar), like a user's `nostr-bt resolve` would, runs one
// read (bench/reader-run.ts) and prints one JSON line of figures. A lingering swarm reader then
// keeps serving what it downloaded until its stdin closes, and prints what it uploaded.
import { runRead, type ReaderArgs } from './reader-run.js';

/** Written before exiting: a pipe write is asynchronous and process.exit() would cut it. */
const out = (r: unknown) => new Promise<void>((resolve) => process.stdout.write(JSON.stringify(r) + '\n', () => resolve()));

async function childMain(json: string): Promise<void> {
  const args = JSON.parse(json) as ReaderArgs;
  const read = await runRead(args);
  await out(read.result);
  if (args.mode !== 'relay' && args.linger) {
    await new Promise<void>((resolve) => {
      process.stdin
        .on('end', () => resolve())
        .on('close', () => resolve())
        .resume();
    });
  }
  const uploaded = await read.release();
  if (args.mode !== 'relay' && args.linger) await out({ uploaded });
  process.exit(0);
}

void childMain(process.argv[2]!);
