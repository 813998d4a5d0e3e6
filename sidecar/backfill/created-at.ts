// Reads an event line's created_at without parsing the whole line. In minified JSON the text
// `"created_at":` can only be an object key (inside a string every `"` is escaped), so one
// occurrence followed by digits is the answer; anything else falls back to JSON.parse.
const KEY = Buffer.from('"created_at":');

export function createdAtOf(line: Buffer): number | null {
  const i = line.indexOf(KEY);
  if (i >= 0 && line.indexOf(KEY, i + KEY.length) < 0) {
    let j = i + KEY.length;
    let v = 0;
    let digits = 0;
    for (; j < line.length && digits < 16; j++, digits++) {
      const c = line[j]!;
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
    }
    const next = line[j];
    if (digits > 0 && (next === 44 /* , */ || next === 125) /* } */) return v;
  }
  return parsed(line);
}

function parsed(line: Buffer): number | null {
  let v: unknown;
  try {
    v = JSON.parse(line.toString('utf8'));
  } catch {
    return null;
  }
  if (v && typeof v === 'object' && 'event' in v) v = (v as { event: unknown }).event;
  const c = v && typeof v === 'object' ? (v as { created_at?: unknown }).created_at : undefined;
  return typeof c === 'number' && Number.isSafeInteger(c) && c >= 0 ? c : null;
}
