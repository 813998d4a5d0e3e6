// Splits a byte stream into lines without decoding it, keeping each line's end offset in the
// source (for resumable checkpoints). A line longer than the limit is never buffered whole: its
// bytes are skipped as they arrive and it is reported once, so one runaway line cannot exhaust
// memory.

export interface SplitLines {
  /** Complete lines of this chunk (without the newline; a trailing `\r` is kept). */
  lines: Buffer[];
  /** ends[i]: source offset just past line i's newline. */
  ends: number[];
}

export interface OversizedLine {
  /** 1-based line number in the source (counted from where reading started). */
  lineNo: number;
  /** Source offset of its first byte. */
  offset: number;
  bytes: number;
}

export class LineSplitter {
  /** Source offset of the next byte to be pushed. */
  offset: number;
  /** Lines seen so far, oversized ones included. */
  lineCount = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private discarding: OversizedLine | null = null;

  constructor(
    private readonly maxLineBytes: number,
    private readonly onOversized: (line: OversizedLine) => void,
    startOffset = 0,
  ) {
    this.offset = startOffset;
  }

  push(chunk: Buffer): SplitLines {
    const out: SplitLines = { lines: [], ends: [] };
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf(10, start)) !== -1) {
      const end = this.offset + nl + 1;
      if (this.discarding) {
        this.discarding.bytes += nl - start;
        this.onOversized(this.discarding);
        this.discarding = null;
      } else {
        const line = this.tailBytes > 0 ? Buffer.concat([...this.tail, chunk.subarray(start, nl)]) : chunk.subarray(start, nl);
        const lineStart = end - line.length - 1;
        this.tail = [];
        this.tailBytes = 0;
        this.lineCount++;
        if (line.length > this.maxLineBytes) this.onOversized({ lineNo: this.lineCount, offset: lineStart, bytes: line.length });
        else {
          out.lines.push(line);
          out.ends.push(end);
        }
      }
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.length - start;
      if (this.discarding) this.discarding.bytes += rest;
      else if (this.tailBytes + rest > this.maxLineBytes) {
        this.lineCount++;
        this.discarding = { lineNo: this.lineCount, offset: this.offset + start - this.tailBytes, bytes: this.tailBytes + rest };
        this.tail = [];
        this.tailBytes = 0;
      } else {
        // Copy: the caller may reuse the chunk's memory.
        this.tail.push(Buffer.from(chunk.subarray(start)));
        this.tailBytes += rest;
      }
    }
    this.offset += chunk.length;
    return out;
  }

  /** The last line when the source does not end with a newline. */
  end(): SplitLines {
    const out: SplitLines = { lines: [], ends: [] };
    if (this.discarding) {
      this.onOversized(this.discarding);
      this.discarding = null;
    } else if (this.tailBytes > 0) {
      this.lineCount++;
      out.lines.push(Buffer.concat(this.tail));
      out.ends.push(this.offset);
    }
    this.tail = [];
    this.tailBytes = 0;
    return out;
  }
}
