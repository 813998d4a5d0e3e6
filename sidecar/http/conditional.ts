// Conditional GET: an If-None-Match that names the current ETag (or `*`) gets 304.
import type { IncomingMessage, ServerResponse } from 'node:http';

export function matchesEtag(req: IncomingMessage, etag: string): boolean {
  const inm = req.headers['if-none-match'];
  if (!inm) return false;
  if (inm.trim() === '*') return true;
  // Weak comparison (RFC 9110 §13.1.2): W/"x" matches "x".
  return inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

/** Sends 304 with the validators when the client's copy is current; true if it did. */
export function notModified(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>): boolean {
  if (!matchesEtag(req, headers.etag!)) return false;
  res.writeHead(304, headers).end();
  return true;
}
