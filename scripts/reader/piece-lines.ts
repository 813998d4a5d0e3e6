// Lines of a file whose pieces arrive in any order (rarest first): complete lines inside a piece
// are handed over at once; a line cut by piece boundaries is handed over as soon as every piece
// it spans is in. So events can be checked while the file downloads, without asking peers for
// the pieces in file order (which would make every reader of a swarm want the same piece from the
// same seed at the same time).
export interface LineSink {
  /** One line without its \n; `terminated` is false only for a last line that has none. */
  line(bytes: Buffer, terminated: boolean): void;
  /** A line longer than the limit (never assembled in memory). */
  tooLong(): void;
}

interface Chunk {
  /** Bytes before the first \n (all of it when there is none). */
  head: Buffer;
  /** Bytes after the last \n (empty when the chunk ends with \n). */
  tail: Buffer;
  hasNewline: boolean;
}

export class PieceLineAssembler {
  private readonly chunks: (Chunk | undefined)[];
  private received = 0;

  /** `count` chunks (file pieces, in file order) make up the file. */
  constructor(
    private readonly count: number,
    private readonly maxLineBytes: number,
    private readonly sink: LineSink,
  ) {
    this.chunks = new Array<Chunk | undefined>(count);
  }

  get complete(): boolean {
    return this.received === this.count;
  }

  /** Chunk `index` (0-based, in file order) arrived; each index once. */
  push(index: number, data: Buffer): void {
    if (index < 0 || index >= this.count || this.chunks[index]) return;
    const first = data.indexOf(0x0a);
    // Copies of the edges only, so the piece itself can be freed once its whole lines are out.
    const chunk: Chunk =
      first === -1
        ? { head: data, tail: Buffer.alloc(0), hasNewline: false }
        : { head: Buffer.from(data.subarray(0, first)), tail: Buffer.from(data.subarray(data.lastIndexOf(0x0a) + 1)), hasNewline: true };
    this.chunks[index] = chunk;
    this.received++;
    if (chunk.hasNewline) {
      // In file order: the line ending in this chunk, those inside it, the one starting in it.
      this.trySpan(index, 'left');
      let start = first + 1;
      const last = data.lastIndexOf(0x0a);
      while (start <= last) {
        const nl = data.indexOf(0x0a, start);
        this.emit([data.subarray(start, nl)], true);
        start = nl + 1;
      }
      this.trySpan(index, 'right');
    } else {
      this.trySpan(index, 'both');
    }
  }

  /**
   * A line across chunk boundaries runs from the tail of a chunk with a \n (or the file start)
   * through chunks without one to the head of the next chunk with a \n (or the file end).
   * Hands it over if all those chunks are in.
   */
  private trySpan(index: number, side: 'left' | 'right' | 'both'): void {
    let a = index;
    let b = index;
    if (side === 'left' || side === 'both') {
      // Walk left to the chunk whose tail starts the line.
      a = index - 1;
      while (a >= 0) {
        const c = this.chunks[a];
        if (!c) return;
        if (c.hasNewline) break;
        a--;
      }
    }
    if (side === 'right' || side === 'both') {
      b = index + 1;
      while (b < this.count) {
        const c = this.chunks[b];
        if (!c) return;
        if (c.hasNewline) break;
        b++;
      }
    }
    // Chunks a (exclusive of its head) … b (its head only): a = -1 is the file start, b = count the file end.
    const parts: Buffer[] = [];
    if (a >= 0) parts.push(this.chunks[a]!.tail);
    for (let i = a + 1; i < b; i++) parts.push(this.chunks[i]!.head);
    const terminated = b < this.count;
    if (terminated) parts.push(this.chunks[b]!.head);
    this.emit(parts, terminated);
  }

  private emit(parts: Buffer[], terminated: boolean): void {
    let len = 0;
    for (const p of parts) len += p.length;
    if (len === 0) return;
    if (len > this.maxLineBytes) return void this.sink.tooLong();
    this.sink.line(parts.length === 1 ? parts[0]! : Buffer.concat(parts, len), terminated);
  }
}
