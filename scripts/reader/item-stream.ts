// One producer, one consumer: what the reader finds, handed to a `for await` loop. `push`
// resolves when the consumer has taken the item (a producer that awaits it is held back to the
// consumer's pace); a consumer that stops early (break, throw) cancels the producer.

export class ItemStream<T> implements AsyncIterable<T> {
  private readonly queue: { item: T; taken: () => void }[] = [];
  private wake: (() => void) | null = null;
  private ended = false;
  private failure: { error: unknown } | null = null;
  private cancelled = false;
  private iterated = false;

  constructor(private readonly onCancel: () => void) {}

  push(item: T): Promise<void> {
    if (this.cancelled || this.ended) return Promise.resolve();
    return new Promise<void>((taken) => {
      this.queue.push({ item, taken });
      this.wake?.();
    });
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    this.end();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.iterated) throw new Error('this result can be iterated only once');
    this.iterated = true;
    let finished = false;
    try {
      for (;;) {
        const next = this.queue.shift();
        if (next) {
          next.taken();
          yield next.item;
          continue;
        }
        if (this.ended) {
          finished = true;
          if (this.failure) throw this.failure.error;
          return;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
      }
    } finally {
      if (!finished) {
        this.cancelled = true;
        for (const q of this.queue.splice(0)) q.taken();
        this.onCancel();
      }
    }
  }
}
