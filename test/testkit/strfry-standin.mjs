#!/usr/bin/env node
// Stands in for `strfry` in tests of `nostr-bt crawl --import` (strfry is not installable here):
// accepts `strfry --config=FILE import` like strfry does, reads JSONL on stdin and records what it
// got (argv, config path, every line) as JSON in $STRFRY_STANDIN_OUT. A missing config file or an
// unknown command fails as strfry would (non-zero exit, message on stderr).
import { existsSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const config = args.find((a) => a.startsWith('--config='))?.slice('--config='.length);
const command = args.filter((a) => !a.startsWith('--'))[0];
if (!config || !existsSync(config)) {
  process.stderr.write(`standin strfry: config file not found: ${config}\n`);
  process.exit(1);
}
if (command !== 'import') {
  process.stderr.write(`standin strfry: unknown command ${command}\n`);
  process.exit(1);
}
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const lines = input.split('\n').filter((l) => l.length > 0);
  let invalid = 0;
  for (const l of lines) {
    try {
      JSON.parse(l);
    } catch {
      invalid++;
    }
  }
  if (process.env.STRFRY_STANDIN_OUT) writeFileSync(process.env.STRFRY_STANDIN_OUT, JSON.stringify({ args, config, lines }));
  process.stderr.write(`standin strfry: imported ${lines.length - invalid} events, ${invalid} invalid\n`);
  process.exit(invalid > 0 ? 1 : 0);
});
