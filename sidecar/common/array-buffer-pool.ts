// A few big ArrayBuffers kept for reuse. Under a steady stream of batches, the ingest thread and
// the judge worker pass the same buffers back and forth (transferred, never copied) instead of
// allocating new ones: every new buffer counts as external memory until a full garbage
// collection frees it, and those buffers made V8 run one on the ingest thread per batch.
export class ArrayBufferPool {
  private free: ArrayBuffer[] = [];

  constructor(private readonly max: number) {}

  /** A buffer of at least `bytes` (a kept one when one is big enough; new ones get 25% room). */
  take(bytes: number): ArrayBuffer {
    const i = this.free.findIndex((b) => b.byteLength >= bytes);
    if (i >= 0) return this.free.splice(i, 1)[0]!;
    return new ArrayBuffer(Math.ceil(bytes * 1.25));
  }

  /** Keeps `buffer` for a later take, unless enough are kept (or it was transferred away). */
  give(buffer: ArrayBuffer): void {
    if (buffer.byteLength === 0 || this.free.length >= this.max || this.free.includes(buffer)) return;
    this.free.push(buffer);
  }

  /** Lets every kept buffer go (when idle). */
  clear(): void {
    this.free = [];
  }

  get size(): number {
    return this.free.length;
  }
}
