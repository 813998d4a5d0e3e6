// A Prometheus histogram whose observations carry a count: the ingest latency of a socket chunk
// holds for every line in it. prom-client's Histogram takes one value per call and builds a
// label object and a closure each time: per line, that was a measurable share of the ingest
// thread. This keeps plain bucket counts and lets prom-client's registry expose them.
import type { Registry } from 'prom-client';

export class CountedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly upperBounds: readonly number[],
    registry: Registry,
  ) {
    this.counts = new Float64Array(upperBounds.length);
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** `times` observations of `value`. */
  observe(value: number, times = 1): void {
    const bounds = this.upperBounds;
    for (let b = 0; b < bounds.length; b++) {
      if (value <= bounds[b]!) {
        this.counts[b]! += times;
        break;
      }
    }
    this.sum += value * times;
    this.count += times;
  }

  /** What prom-client's registry reads: cumulative buckets, +Inf, sum and count. */
  get(): {
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: { labels: Record<string, string | number>; value: number; metricName: string }[];
  } {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    let cumulative = 0;
    this.upperBounds.forEach((le, b) => {
      cumulative += this.counts[b]!;
      values.push({ labels: { le }, value: cumulative, metricName: `${this.name}_bucket` });
    });
    values.push({ labels: { le: '+Inf' }, value: this.count, metricName: `${this.name}_bucket` });
    values.push({ labels: {}, value: this.sum, metricName: `${this.name}_sum` });
    values.push({ labels: {}, value: this.count, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = this.count = 0;
  }
}
