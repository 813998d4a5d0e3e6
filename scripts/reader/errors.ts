// The errors the reader throws, for callers that branch on them: each has a stable `code`.
// What a bridge, bundle or relay did wrong is never thrown: it is reported in the summary.

export type ReaderErrorCode = 'BAD_INPUT' | 'DHT_UNREACHABLE' | 'READER_CLOSED' | 'NO_BRIDGE_FOUND';

export class ReaderError extends Error {
  constructor(
    readonly code: ReaderErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The reader was closed before or while it was asked for something. */
export class ReaderClosedError extends ReaderError {
  override name = 'ReaderClosedError';
  constructor(message = 'the reader is closed') {
    super('READER_CLOSED', message);
  }
}

/** No DHT node answered the bootstrap in time. */
export class DhtUnreachable extends ReaderError {
  override name = 'DhtUnreachable';
  constructor(message: string) {
    super('DHT_UNREACHABLE', message);
  }
}

/** Asked to discover bridges, the reader found none (no beacon answered, nothing in its cache). */
export class NoBridgeFoundError extends ReaderError {
  override name = 'NoBridgeFoundError';
  constructor(
    message: string,
    /** What discovery did. */
    readonly discovery: unknown,
  ) {
    super('NO_BRIDGE_FOUND', message);
  }
}
