// docs/protocol.md is the spec: the constants it states are the code's. Each check below reads one
// statement of the doc (a table row, a code block, a code span or a sentence with its number) and
// compares it with the exported constant or with what the code does (an encoded event row, the
// tables of a real LMDB index, a spool name, a derived key, the kind predicates). A statement the
// doc no longer makes is a failure too, so rewording the doc means updating its check here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { MAX_PIECE_LENGTH, MIN_PIECE_LENGTH, TARGET_PIECES, pieceLengthFor } from '../sidecar/bundles/builder.js';
import { isAddressable, isEphemeral, isReplaceable, replaceKeyOf } from '../sidecar/formats/event-kinds.js';
import { BRIDGE_SALT, FORMAT_VERSION, MAX_PAGES, MAX_SALT_BYTES, MAX_V_BYTES, authorPages } from '../sidecar/formats/pointer-item.js';
import {
  SPOOL_DIR_MODE,
  SPOOL_STALE_OPEN_MS,
  isOpenSpoolName,
  isReadySpoolName,
  openSpoolName,
  readySpoolPath,
  spoolWriterPid,
} from '../sidecar/formats/spool-names.js';
import { Z32, zbase32 } from '../sidecar/formats/zbase32.js';
import { CheckpointStore } from '../sidecar/index/checkpoints.js';
import { encodeEventRow, type EventRow } from '../sidecar/index/event-row.js';
import { META_KEYS } from '../sidecar/index/index-meta.js';
import { INDEX_FORMAT, Store, UPGRADABLE_FORMATS } from '../sidecar/index/store.js';
import { QUARANTINED_HEAD_BYTES, REPLAY_QUARANTINE_LIMIT } from '../sidecar/ingest/quarantine.js';
import { MAX_CHECKPOINT_KEY, MAX_SOURCE_NAME } from '../sidecar/ingest/socket-server.js';
import { MediaIndex, mediaIndexPath } from '../sidecar/media/media-index.js';
import { HKDF_INFO, HKDF_SALT, deriveBridgeSeed } from '../sidecar/publishing/identity.js';
import { DIST } from './testkit/sidecar-process.js';

const DOC = readFileSync(join(DIST, '../docs/protocol.md'), 'utf8');
const KiB = 1024;
const MiB = 1024 * 1024;

/** What the code has that is not a constant: the LMDB tables a real index and media index open. */
interface Observed {
  indexTables: string[];
  mediaTables: string[];
}

/** Names of the named databases in the LMDB environment at `path` (they are keys of its main database). */
async function lmdbTables(path: string): Promise<string[]> {
  const env = open({ path, readOnly: true });
  try {
    return [...env.getKeys()].map(String).sort();
  } finally {
    await env.close();
  }
}

async function observe(): Promise<Observed> {
  const dir = mkdtempSync(join(tmpdir(), 'protocol-doc-'));
  try {
    const indexDir = join(dir, 'index');
    const store = Store.open(indexDir);
    // The backfill checkpoints' owner opens its table on the same environment (as the sidecar does).
    new CheckpointStore(store.root);
    await store.close();
    const media = MediaIndex.open(dir);
    await media.close();
    return { indexTables: await lmdbTables(indexDir), mediaTables: await lmdbTables(mediaIndexPath(dir)) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The text from the heading line that starts with `heading` to the next heading of the same or a higher level. */
function section(doc: string, heading: string): string {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l === heading || l.startsWith(`${heading} `));
  if (start < 0) return '';
  const level = /^#+/.exec(heading)![0].length;
  let end = start + 1;
  while (end < lines.length && !(/^#+ /.test(lines[end]!) && /^#+/.exec(lines[end]!)![0].length <= level)) end++;
  return lines.slice(start + 1, end).join('\n');
}

/** The body rows of the first markdown table in `text`, as trimmed cells. */
function tableRows(text: string): string[][] {
  const rows = text.split('\n').filter((l) => l.startsWith('|'));
  return rows.slice(2).map((l) =>
    l
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim()),
  );
}

const WIDTH: Record<string, number> = { f64: 8, u32: 4, u16: 2 };
const spans = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
const num = (s: string): number => Number(s.replace(/,/g, ''));

/** A kind range list as the doc writes it, "0, 3, 10000–19999", as a predicate. */
function kindsIn(list: string): (kind: number) => boolean {
  const parts = list.split(',').map((p) => p.trim().split(/[–-]/).map(num));
  return (k) => parts.some(([lo, hi]) => k >= lo! && k <= (hi ?? lo)!);
}

/**
 * Every way the doc and the code disagree; [] when they agree. `check(what, cond)` records `what`
 * when cond fails; `stated(what, re)` is the match of `re`, or records that the doc no longer
 * states `what`.
 */
function disagreements(doc: string, seen: Observed): string[] {
  const out: string[] = [];
  const check = (what: string, ok: boolean, detail = ''): void => void (ok || out.push(`${what}${detail ? `: ${detail}` : ''}`));
  const stated = (what: string, re: RegExp, text = doc): RegExpExecArray | null => {
    const m = re.exec(text);
    if (!m) out.push(`docs/protocol.md no longer states ${what} (${re})`);
    return m;
  };
  const same = (what: string, doc: unknown, code: unknown): void =>
    check(what, JSON.stringify(doc) === JSON.stringify(code), `doc ${JSON.stringify(doc)}, code ${JSON.stringify(code)}`);

  // §2 hello limits.
  const hello = stated('the hello line', /\{"hello":"<source name, ≤ (\d+) chars>".*"checkpoint":"<key, ≤ ([\d,]+) chars>"\}/);
  if (hello) {
    same('hello: source name length (MAX_SOURCE_NAME)', num(hello[1]!), MAX_SOURCE_NAME);
    same('hello: checkpoint key length (MAX_CHECKPOINT_KEY)', num(hello[2]!), MAX_CHECKPOINT_KEY);
  }
  const head = stated('how much of a long line is quarantined', /is quarantined \(first (\d+) KiB\)/);
  if (head) same('quarantined head of a long line (QUARANTINED_HEAD_BYTES)', num(head[1]!) * KiB, QUARANTINED_HEAD_BYTES);

  // §3 spool names and mode.
  const spool = section(doc, '## 3. The spool directory');
  const mode = stated('the spool directory mode', /created mode `([0-7]+)`/, spool);
  if (mode) same('spool directory mode (SPOOL_DIR_MODE)', mode[1], SPOOL_DIR_MODE.toString(8));
  const names = stated('the spool file names', /```\n(\S.*?)\s{2,}.*\n(\S.*?)\s{2,}.*\n```/, spool);
  if (names) {
    const [ms, pid, n] = [1795464242123, 4242, 7];
    const fill = (pattern: string) =>
      pattern.replace('<unix ms at creation>', String(ms)).replace('<plugin pid>', String(pid)).replace('<n>', String(n));
    const open = fill(names[1]!);
    const ready = fill(names[2]!);
    same('spool: name of an open file (openSpoolName)', open, openSpoolName(ms, pid, n));
    same('spool: name of a closed file (readySpoolPath)', ready, readySpoolPath(open));
    check('spool: an open name is open, not ready', isOpenSpoolName(open) && !isReadySpoolName(open));
    check('spool: a ready name is ready, not open', isReadySpoolName(ready) && !isOpenSpoolName(ready));
    same('spool: the pid in a name (spoolWriterPid)', pid, spoolWriterPid(ready));
  }
  const stale = stated('when an orphaned .open file is drained', /whose mtime is older than (\d+) s/, spool);
  if (stale) same('spool: age of an orphaned .open file (SPOOL_STALE_OPEN_MS)', num(stale[1]!) * 1000, SPOOL_STALE_OPEN_MS);

  // §5 quarantine limits of a replay.
  const replay = stated('the replay quarantine limit', /keeps at most its first ([\d,]+) rejected lines or (\d+) MiB/);
  if (replay)
    same(
      'replay quarantine limit (REPLAY_QUARANTINE_LIMIT)',
      { lines: num(replay[1]!), bytes: num(replay[2]!) * MiB },
      REPLAY_QUARANTINE_LIMIT,
    );

  // §6 piece length: the constants, and the rule against the code for sizes around every step.
  const rule = /the smallest power of two ≥ (?:total bytes|length) \/ (\d+), at least (\d+) KiB(?: \(\d+\))? and at most (\d+) MiB/;
  for (const [where, text] of [
    ['bundle info dict', section(doc, '### Info dict')],
    ['blob torrent', section(doc, '### Blob torrent')],
  ] as const) {
    const piece = stated(`the piece length rule of the ${where}`, rule, text);
    if (!piece) continue;
    const [target, min, max] = [num(piece[1]!), num(piece[2]!) * KiB, num(piece[3]!) * MiB];
    same(`${where}: pieces aimed at (TARGET_PIECES)`, target, TARGET_PIECES);
    same(`${where}: smallest piece (MIN_PIECE_LENGTH)`, min, MIN_PIECE_LENGTH);
    same(`${where}: largest piece (MAX_PIECE_LENGTH)`, max, MAX_PIECE_LENGTH);
    const byDoc = (total: number): number => {
      let p = 1;
      while (p * target < total) p *= 2;
      return Math.min(max, Math.max(min, p));
    };
    const sizes = [0, 1, 1000];
    for (let p = min; p <= max * 2; p *= 2) sizes.push(p * target - 1, p * target, p * target + 1);
    const wrong = sizes.filter((s) => pieceLengthFor(s) !== byDoc(s));
    check(`${where}: piece length rule (pieceLengthFor)`, wrong.length === 0, `differs for ${wrong.slice(0, 3).join(', ')} bytes`);
  }

  // §6 index format.
  const format = stated('the index format', /writes and\s+reads index format \*\*(\d+)\*\*/);
  if (format) same('index format (INDEX_FORMAT)', num(format[1]!), INDEX_FORMAT);
  const formatList = (s: string) =>
    s
      .split(/,|\bor\b/)
      .map((x) => num(x.trim()))
      .sort((a, b) => a - b);
  const up = stated('which formats are upgraded', /upgrades an index of format ([\d, or]+?) in place/);
  if (up) same('formats upgraded in place (UPGRADABLE_FORMATS)', formatList(up[1]!), [...UPGRADABLE_FORMATS].sort());
  const ro = stated('which formats read-only tools refuse', /Read-only tools refuse an index of format ([\d, or]+?) until/);
  if (ro) same('formats read-only tools refuse until upgraded (UPGRADABLE_FORMATS)', formatList(ro[1]!), [...UPGRADABLE_FORMATS].sort());

  // §6 event rows: every field where the doc puts it, in the rows the code encodes.
  const rowDoc = section(doc, '### Event rows');
  const fields = tableRows(rowDoc);
  check('event rows: the layout table', fields.length >= 9, `${fields.length} rows`);
  const withX: EventRow = {
    i: Buffer.alloc(32, 0xa1),
    p: Buffer.alloc(32, 0xb2),
    c: 1795464242,
    o: 2 ** 33 + 5,
    n: 321,
    k: 30023,
    x: 1795469999,
    s: '30023:ab:slot',
  };
  const { x: _x, ...withoutX } = withX;
  for (const row of [withX, withoutX as EventRow]) {
    const bytes = encodeEventRow(row);
    const label = row.x === undefined ? 'event row without x' : 'event row with x';
    for (const [offsetCell, sizeCell, fieldCell, valueCell] of fields) {
      const field = (spans(fieldCell!)[0] ?? fieldCell)!;
      const offsets = offsetCell!.split(/\s+or\s+/).map(num);
      const at = offsets.length === 2 ? (row.x === undefined ? offsets[0]! : offsets[1]!) : offsets[0]!;
      const size = sizeCell === 'rest' ? bytes.length - at : num(sizeCell!);
      const got = bytes.subarray(at, at + size);
      const type = /\((f64|u32|u16)\)/.exec(valueCell!)?.[1];
      const read = (b: Buffer) =>
        type === 'f64' ? b.readDoubleLE(0) : type === 'u32' ? b.readUInt32LE(0) : type === 'u16' ? b.readUInt16LE(0) : undefined;
      if (field === 'flags') same(`${label}: flags byte at ${at}`, got[0], (row.x === undefined ? 0 : 1) | 2);
      else if (field === 'x' && row.x === undefined) continue;
      else if (field === 'i' || field === 'p') check(`${label}: ${field} at ${at}, ${size} bytes`, got.equals(Buffer.from(row[field])));
      else if (field === 's') same(`${label}: s at ${at}`, got.toString('utf8'), row.s);
      else if (field === 'c' || field === 'o' || field === 'n' || field === 'k' || field === 'x') {
        const fits = type !== undefined && WIDTH[type] === size && got.length === size;
        check(`${label}: ${field} at ${at} is ${type ?? 'of no stated type'} in ${size} bytes`, fits);
        if (fits) same(`${label}: ${field} at ${at} (${type})`, read(got), row[field]);
      } else check(`event rows: field ${field}`, false, 'not a field of EventRow');
    }
  }
  const rowSize = stated('the size of a row', /A row is (\d+) bytes, plus (\d+) with `x`/, rowDoc);
  if (rowSize) {
    const base = { ...withoutX, s: undefined } as EventRow;
    same('event row size without x and s', num(rowSize[1]!), encodeEventRow(base).length);
    same('event row size with x, without s', num(rowSize[1]!) + num(rowSize[2]!), encodeEventRow({ ...base, x: 1 }).length);
  }

  // §6 the index's tables (a real Store's LMDB) and the meta keys.
  const tables = tableRows(section(doc, "### The index's tables"));
  same("the index's tables (a Store's LMDB)", tables.map((r) => spans(r[0]!)[0] ?? r[0]).sort(), seen.indexTables);
  const meta = tables.find((r) => r[0] === '`meta`');
  if (meta) same('meta keys (META_KEYS)', spans(meta[1]!).sort(), [...META_KEYS].sort());
  const slots = tables.find((r) => r[0] === '`slots`');
  if (slots) {
    const [replaceable, addressable] = spans(slots[1]!);
    const pubkey = 'ab'.repeat(32);
    same(
      'slots key of a replaceable event (replaceKeyOf)',
      replaceable?.replace('kind', '10002').replace('pubkey', pubkey),
      replaceKeyOf({ kind: 10002, pubkey, tags: [] }),
    );
    same(
      'slots key of an addressable event (replaceKeyOf)',
      addressable?.replace('kind', '30023').replace('pubkey', pubkey).replace(/d$/, 'post'),
      replaceKeyOf({ kind: 30023, pubkey, tags: [['d', 'post']] }),
    );
  }

  // §7 identity: the HKDF strings, and a key derived as the doc says equals the code's.
  const hkdf = stated('the HKDF derivation', /HKDF-SHA256\(ikm = [^,]+, salt = "([^"]+)", info = "([^"]+)", length = (\d+)\)/);
  if (hkdf) {
    same('HKDF salt (HKDF_SALT)', hkdf[1], HKDF_SALT);
    same('HKDF info (HKDF_INFO)', hkdf[2], HKDF_INFO);
    const secret = Buffer.alloc(32, 7);
    same(
      'bridge seed derived as the doc says (deriveBridgeSeed)',
      Buffer.from(hkdfSync('sha256', secret, hkdf[1]!, hkdf[2]!, num(hkdf[3]!))).toString('hex'),
      deriveBridgeSeed(secret).toString('hex'),
    );
  }
  const z32 = stated('the z-base-32 alphabet', /z-base-32 \(alphabet `([^`]+)`/);
  if (z32) {
    same('z-base-32 alphabet (Z32)', z32[1], Z32);
    // Five bits at a time, most significant first: 0b00000 00001 00010 … names the alphabet in order.
    same('z-base-32 encoding uses the alphabet in order', zbase32(Buffer.from('00443214c74254b635cf84653a56d7c675be77df', 'hex')), z32[1]);
  }

  // §7 pointer items.
  const vMax = stated('the size limit of a pointer value', /`v` \| a dict, bencoded size ≤ (\d+) bytes/);
  if (vMax) same('pointer value size (MAX_V_BYTES)', num(vMax[1]!), MAX_V_BYTES);
  const node205 = stated('what the DHT node rejects with 205', /rejects \(error 205\) values over (\d+) bytes bencoded/);
  if (node205) same('DHT node: largest value stored (MAX_V_BYTES)', num(node205[1]!), MAX_V_BYTES);
  const salt207 = stated('the salt limit (207)', /207 for a salt over (\d+) bytes/);
  if (salt207) same('DHT node: longest salt (MAX_SALT_BYTES)', num(salt207[1]!), MAX_SALT_BYTES);
  const pages = stated('the number of pages', /number of pages \(1 … (\d+)\)/);
  if (pages) same('pointer pages at most (MAX_PAGES)', num(pages[1]!), MAX_PAGES);
  const version = stated('the pointer format version', /"v":\s+(\d+),\s+format version/);
  if (version) same('pointer format version (FORMAT_VERSION)', num(version[1]!), FORMAT_VERSION);
  const perPage = stated('how many infohashes a page holds', /A page holds (\d+) infohashes/);
  if (perPage) {
    const k = num(perPage[1]!);
    const hashes = (count: number) => Array.from({ length: count }, (_, i) => i.toString(16).padStart(40, '0'));
    const listed = (p: { ih?: Buffer; b: Buffer }) => (p.ih ? 1 : 0) + p.b.length / 20;
    const one = authorPages(hashes(k));
    const two = authorPages(hashes(k + 1));
    check(
      `a page holds ${k} infohashes (authorPages)`,
      one.length === 1 && listed(one[0]!) === k && two.length === 2,
      `${k} → ${one.length} page(s), ${k + 1} → ${two.length}`,
    );
    const last = authorPages(hashes(k * MAX_PAGES));
    check(`${MAX_PAGES} pages of ${k} fit (authorPages)`, last.length === MAX_PAGES && last.every((p) => listed(p) === k));
  }
  const bridgeSalt = stated('the bridge item salt', /`salt` = the (\d+) ASCII bytes `([^`]+)`/);
  if (bridgeSalt) {
    same('bridge item salt (BRIDGE_SALT)', bridgeSalt[2], BRIDGE_SALT.toString('ascii'));
    same('bridge item salt length', num(bridgeSalt[1]!), BRIDGE_SALT.length);
  }

  // §7 reading: the kind ranges, against the predicates the sidecar and the reader share.
  const kinds = stated(
    'the kind ranges',
    /replaceable \(([\d,\s–]+)\) and addressable \(([\d–]+), per `d` tag\).*?ephemeral \(([\d–]+)\)/s,
  );
  if (kinds) {
    for (const [name, list, code] of [
      ['replaceable', kinds[1]!, isReplaceable],
      ['addressable', kinds[2]!, isAddressable],
      ['ephemeral', kinds[3]!, isEphemeral],
    ] as const) {
      const byDoc = kindsIn(list);
      const wrong: number[] = [];
      for (let k = 0; k <= 65535 && wrong.length < 3; k++) if (byDoc(k) !== code(k)) wrong.push(k);
      check(`${name} kinds (${code.name})`, wrong.length === 0, `differ at kind ${wrong.join(', ')}`);
    }
  }

  // §8 the media index's tables (a real MediaIndex's LMDB).
  const media = tableRows(section(doc, '### Media index'));
  same("the media index's tables (a MediaIndex's LMDB)", media.map((r) => spans(r[0]!)[0] ?? r[0]).sort(), seen.mediaTables);
  return out;
}

test('docs/protocol.md states the constants and layouts the code has', async () => {
  const seen = await observe();
  assert.ok(
    seen.indexTables.includes('events') && seen.mediaTables.includes('blobs'),
    `the LMDB tables were listed: ${JSON.stringify(seen)}`,
  );
  assert.deepEqual(disagreements(DOC, seen), []);
});

test('the check fails when the doc and the code disagree', async () => {
  const seen = await observe();
  // One edit per kind of statement; each must be reported (and nothing else breaks the parse).
  const edits: [string, string, RegExp][] = [
    ['reads index format **7**', 'reads index format **8**', /index format \(INDEX_FORMAT\)/],
    ['of format 5 or 6 in place', 'of format 4, 5 or 6 in place', /UPGRADABLE_FORMATS/],
    ['`pointer.seq`, ', '', /meta keys/],
    ['total bytes / 2048', 'total bytes / 1024', /bundle info dict: pieces aimed at/],
    ['(16384) and at most 4 MiB', '(16384) and at most 8 MiB', /bundle info dict: largest piece/],
    ['ybndrfg8ejkmcpqxot1uwisza345h769', 'ybndrfg8ejkmcpqxot1uwisza345h796', /z-base-32/],
    ['source name, ≤ 40 chars', 'source name, ≤ 64 chars', /MAX_SOURCE_NAME/],
    ['key, ≤ 1000 chars', 'key, ≤ 100 chars', /MAX_CHECKPOINT_KEY/],
    ['first 10,000 rejected lines', 'first 1,000 rejected lines', /REPLAY_QUARANTINE_LIMIT/],
    ['(first 4 KiB)', '(first 8 KiB)', /QUARANTINED_HEAD_BYTES/],
    ['bencoded size ≤ 1000 bytes', 'bencoded size ≤ 1024 bytes', /pointer value size/],
    ['207 for a salt over 64 bytes', '207 for a salt over 32 bytes', /MAX_SALT_BYTES/],
    ['| 81 | 4 | `n` |', '| 83 | 4 | `n` |', /event row with(out)? x: n at 83/],
    ['| 85 | 2 | `k` | kind (u16) |', '| 85 | 2 | `k` | kind (u32) |', /: k at 85/],
    ['| `vanished` |', '| `vanish` |', /the index's tables/],
    ['| `byEvent` |', '| `by-event` |', /the media index's tables/],
    ['-<n>.ready', '-<n>.done', /readySpoolPath/],
    ['created mode `2770`', 'created mode `0770`', /SPOOL_DIR_MODE/],
    ['info = "nostr-bt bridge ed25519 key v1"', 'info = "nostr-bt bridge ed25519 key v2"', /HKDF info/],
    ['A page holds 48 infohashes', 'A page holds 47 infohashes', /a page holds 47/],
    ['10000–19999) and addressable', '10000–20000) and addressable', /replaceable kinds/],
    ['ephemeral (20000–29999)', 'ephemeral (20000–39999)', /ephemeral kinds/],
    ['this version writes and\nreads index format', 'this version reads index format', /no longer states the index format/],
  ];
  for (const [from, to, expected] of edits) {
    assert.ok(DOC.includes(from), `the doc has ${JSON.stringify(from)} to edit`);
    const found = disagreements(DOC.replace(from, to), seen);
    assert.ok(
      found.some((d) => expected.test(d)),
      `editing ${JSON.stringify(from)} → ${JSON.stringify(to)} is reported (${expected}); got ${JSON.stringify(found)}`,
    );
  }
});
