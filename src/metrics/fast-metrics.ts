/**
 * A counter and a histogram for the two paths every request takes (the HTTP middleware, each store
 * call), where prom-client's own would check and hash the label values on every increment: here a
 * caller takes a child for its label values once and keeps it, and an observation is a few
 * additions on numbers (about 20 ns instead of about 500). They register with a prom-client
 * Registry as any metric does (an object with name, help, type and `get()`), and the registry
 * writes them in the same exposition format as prom-client's own Counter and Histogram.
 */
import type { Metric, Registry } from 'prom-client';

type Values = Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;

abstract class FastMetric<C> {
  readonly aggregator = 'sum';
  protected readonly children = new Map<string, { labels: Record<string, string>; child: C }>();

  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[], registry: Registry) {
    registry.registerMetric(this as unknown as Metric);
  }

  protected abstract make(): C;
  protected abstract zero(child: C): void;

  /** The child for these label values (in `labelNames` order): take it once, keep it. */
  child(...values: string[]): C {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${this.labelNames.length} label values expected`);
    const key = values.join('\u0000');
    let entry = this.children.get(key);
    if (!entry) {
      entry = { labels: Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]!])), child: this.make() };
      this.children.set(key, entry);
    }
    return entry.child;
  }

  /** Zeroes every child in place (children already handed out keep counting). */
  reset(): void {
    for (const { child } of this.children.values()) this.zero(child);
  }
}

export interface CounterChild {
  value: number;
}

export class FastCounter extends FastMetric<CounterChild> {
  readonly type = 'counter';
  protected make(): CounterChild {
    return { value: 0 };
  }
  protected zero(child: CounterChild): void {
    child.value = 0;
  }
  async get(): Promise<{ name: string; help: string; type: 'counter'; aggregator: 'sum'; values: Values }> {
    const values: Values = [];
    for (const { labels, child } of this.children.values()) values.push({ value: child.value, labels });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class HistogramChild {
  /** Observations per bucket (not cumulative); the last one is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]! += 1;
    this.sum += value;
    this.count += 1;
  }
}

export class FastHistogram extends FastMetric<HistogramChild> {
  readonly type = 'histogram';
  constructor(name: string, help: string, labelNames: readonly string[], readonly buckets: readonly number[], registry: Registry) {
    super(name, help, labelNames, registry);
  }
  protected make(): HistogramChild {
    return new HistogramChild(this.buckets);
  }
  protected zero(child: HistogramChild): void {
    child.counts.fill(0);
    child.sum = 0;
    child.count = 0;
  }
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Values }> {
    const values: Values = [];
    for (const { labels, child } of this.children.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += child.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: child.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: child.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: child.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
