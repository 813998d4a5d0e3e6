// Per-client token buckets (requests per second with a burst), in a map bounded in size: when it
// is full, the least recently seen client is forgotten (it starts again with a full bucket, which
// costs an attacker nothing it did not have: a new address does the same).
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly maxClients = 100_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one token for `client`: false when its bucket is empty (then: wait retryAfterSec()). */
  take(client: string): boolean {
    const t = this.now();
    let b = this.buckets.get(client);
    if (b) {
      this.buckets.delete(client);
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.perSecond);
      b.at = t;
    } else {
      if (this.buckets.size >= this.maxClients) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.burst, at: t };
    }
    this.buckets.set(client, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Seconds until one token is back (for Retry-After). */
  retryAfterSec(): number {
    return Math.max(1, Math.ceil(1 / this.perSecond));
  }

  get size(): number {
    return this.buckets.size;
  }
}
