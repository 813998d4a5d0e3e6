// Reads the fields the plugin needs from one strfry input line, without a full JSON.parse on the
// hot path. strfry writes minified JSON with sorted keys, so the first `"id":"` in the line is the
// event's id: the only keys sorted before it are "authed" (hex), "content" (a JSON string, where a
// quote is always escaped) and "created_at" (a number); "type" is always the last key, so a cut
// line does not pass. Anything unusual falls back to JSON.parse.

const ID_KEY = '"id":"';
const SOURCE_KEY = '"sourceType":"';
const LINE_END = '"type":"new"}';

export interface LineFields {
  id: string;
  sourceType: string;
}

function isHex64At(s: string, at: number): boolean {
  if (s.length < at + 65 || s.charCodeAt(at + 64) !== 34 /* " */) return false;
  for (let i = at; i < at + 64; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** Fast path for strfry's own format; returns null when the line does not look like it. */
function fastFields(line: string): LineFields | null {
  if (!line.startsWith('{"authed":"') && !line.startsWith('{"event":{')) return null;
  if (!line.endsWith(LINE_END)) return null;
  const at = line.indexOf(ID_KEY);
  if (at < 0 || !isHex64At(line, at + ID_KEY.length)) return null;
  const id = line.substr(at + ID_KEY.length, 64);
  const st = line.lastIndexOf(SOURCE_KEY);
  let sourceType = '';
  if (st > 0) {
    const end = line.indexOf('"', st + SOURCE_KEY.length);
    if (end > 0) sourceType = line.substring(st + SOURCE_KEY.length, end);
  }
  return { id, sourceType };
}

/** Slow path: full parse. Returns the id if one can be read, else null. */
function parsedFields(line: string): LineFields | null {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    return null;
  }
  if (!msg || typeof msg !== 'object') return null;
  const event = (msg as { event?: unknown }).event;
  if (!event || typeof event !== 'object') return null;
  const id = (event as { id?: unknown }).id;
  if (typeof id !== 'string' || id.length === 0 || id.length > 256) return null;
  const st = (msg as { sourceType?: unknown }).sourceType;
  return { id, sourceType: typeof st === 'string' ? st : '' };
}

export function readLineFields(line: string): LineFields | null {
  return fastFields(line) ?? parsedFields(line);
}

/** Last-resort id recovery for lines that are not valid JSON (truncated, garbage around them). */
export function salvageId(line: string): string | null {
  const at = line.indexOf(ID_KEY);
  if (at < 0 || !isHex64At(line, at + ID_KEY.length)) return null;
  return line.substr(at + ID_KEY.length, 64);
}
