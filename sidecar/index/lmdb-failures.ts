// lmdb-js rejects, besides the transaction() promise the caller awaits, one promise per write made
// inside the transaction and an internal "commitError" promise, which nobody can await. When a
// commit fails (disk full, I/O error) those surface as unhandled rejections although the caller
// already handles the failure (ingest retries and logs). They must not crash the daemon.

export function isLmdbWriteFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return 'commitError' in err || /[\\/]lmdb[\\/]write\.js:/.test(err.stack ?? '');
}
