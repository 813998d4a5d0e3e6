// A first-come, first-served token bucket for WebTorrent's upload and download limits.
//
// WebTorrent throttles every wire through one speed-limiter ThrottleGroup whose bucket is
// limiter 1.1.5's TokenBucket. That bucket is not fair: a wire that found too few tokens sleeps on
// a timer, and meanwhile every other wire's synchronous tryRemoveTokens takes the tokens that
// drip in, so the sleeper wakes to an empty bucket again, for minutes. A peer uploading under a
// limit then answers some wires and starves others: in bench/media-offload-bench.ts 20 readers
// under a 4 MiB/s limit each sat with 9 unchoked peers holding their missing pieces and every
// request unanswered, and 3 of 20 never finished in 300 s. Here a wire that has to wait joins a
// queue, tokens go to the queue in order, and no one takes tokens past a waiting wire.
//
// It replaces the group's bucket in place (same fields: bucketSize, tokensPerInterval, content;
// same calls: removeTokens, tryRemoveTokens), so ThrottleGroup.setRate (client.throttleUpload)
// keeps working on it.
import type WebTorrent from 'webtorrent';
import { type PatchOwner, patchableObject } from './monkey-patch.js';

type Callback = (err: string | null, remaining: number | null) => void;

export class FairTokenBucket {
  bucketSize: number;
  tokensPerInterval: number;
  readonly interval = 1000;
  content = 0;
  private lastDrip = Date.now();
  private readonly queue: { count: number; cb: Callback }[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(rate: number) {
    this.bucketSize = rate;
    this.tokensPerInterval = rate;
  }

  /** Waiters (tests, diagnostics). */
  get waiting(): number {
    return this.queue.length;
  }

  drip(): void {
    const now = Date.now();
    const elapsed = Math.max(0, now - this.lastDrip);
    this.lastDrip = now;
    this.content = Math.min(this.bucketSize, this.content + (elapsed * this.tokensPerInterval) / this.interval);
  }

  /** Takes `count` tokens now if there are enough and no one is waiting for them. */
  tryRemoveTokens(count: number): boolean {
    if (!this.bucketSize) return true;
    if (count > this.bucketSize || this.queue.length > 0) return false;
    this.drip();
    if (count > this.content) return false;
    this.content -= count;
    return true;
  }

  /** Calls back once `count` tokens are taken, after everyone who asked before. */
  removeTokens(count: number, cb: Callback): boolean {
    if (!this.bucketSize) {
      process.nextTick(cb, null, Number.POSITIVE_INFINITY);
      return true;
    }
    if (count > this.bucketSize) {
      process.nextTick(cb, `Requested tokens ${count} exceeds bucket size ${this.bucketSize}`, null);
      return false;
    }
    this.queue.push({ count, cb });
    this.serve();
    return false;
  }

  private serve(): void {
    this.drip();
    for (let head = this.queue[0]; head && head.count <= this.content; head = this.queue[0]) {
      this.queue.shift();
      this.content -= head.count;
      process.nextTick(head.cb, null, this.content);
    }
    const head = this.queue[0];
    if (!head || this.timer || this.tokensPerInterval <= 0) return;
    const wait = Math.max(1, Math.ceil(((head.count - this.content) * this.interval) / this.tokensPerInterval));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.serve();
    }, wait);
    // Sockets keep a client alive; a bucket waiting for tokens must not keep a process alive on its own.
    this.timer.unref();
  }
}

interface Group {
  bucket: { bucketSize: number; tokensPerInterval: number };
}

const OWNER: PatchOwner = { pkg: 'webtorrent', object: 'WebTorrent client' };

/**
 * Gives the client's upload and download throttle groups fair buckets (call right after `new
 * WebTorrent`). Throws PatchTargetError if webtorrent's internals moved, rather than silently
 * leaving the unfair bucket in place.
 */
export function useFairThrottles(client: WebTorrent): void {
  const groups = patchableObject(client, 'throttleGroups', OWNER) as Record<string, unknown>;
  for (const name of ['up', 'down']) {
    const g = patchableObject(groups, name, { ...OWNER, object: 'client.throttleGroups' }) as Group;
    const bucket = patchableObject(g, 'bucket', { ...OWNER, object: `client.throttleGroups.${name}` }) as Group['bucket'];
    const fair = new FairTokenBucket(bucket.tokensPerInterval);
    fair.bucketSize = bucket.bucketSize;
    g.bucket = fair as unknown as Group['bucket'];
  }
}
