// Reading created_at and id back from a canonical event line (the form the sidecar stores and
// bundles, sidecar/formats/nostr-event.ts validatedEventJson: keys sorted, content first) without
// parsing it: merges and vanish requests read bundle files line by line.
const CREATED_AT = ',"created_at":';
const ID = ',"id":"';

/**
 * `{"content":<string>,"created_at":N,"id":"<64 hex>",...}` → { c: N, id }. Inside the content
 * string every `"` is escaped, so the first `,"created_at":` is the key. Null for anything else.
 */
export function canonicalHead(json: string): { c: number; id: string } | null {
  if (!json.startsWith('{"content":"')) return null;
  const at = json.indexOf(CREATED_AT, 12);
  if (at < 0) return null;
  let i = at + CREATED_AT.length;
  let c = 0;
  const digitsFrom = i;
  for (let ch = json.charCodeAt(i); ch >= 48 && ch <= 57; ch = json.charCodeAt(++i)) c = c * 10 + (ch - 48);
  if (i === digitsFrom || !json.startsWith(ID, i)) return null;
  const id = json.slice(i + ID.length, i + ID.length + 64);
  if (id.length !== 64 || json.charCodeAt(i + ID.length + 64) !== 34) return null;
  return { c, id };
}
