/**
 * The fast counter and histogram write exactly what prom-client's own would for the same
 * observations: same lines, same order of buckets, same cumulative counts, sums and labels.
 */
import { describe, expect, it } from '@jest/globals';
import { Counter, Histogram, Registry } from 'prom-client';
import { FastCounter, FastHistogram } from './fast-metrics.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVED: Array<[string, string, number]> = [
  ['persons', 'findById', 0.0004], ['persons', 'findById', 0.001], ['persons', 'findById', 0.05],
  ['oidc', 'upsert', 2], ['oidc', 'upsert', 0.01], ['persons', 'findById', 1],
];

describe('fast metrics', () => {
  it('expose the same text as prom-client\'s Counter and Histogram', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const fastH = new FastHistogram('x_seconds', 'help', ['repository', 'operation'], BUCKETS, ours);
    const fastC = new FastCounter('x_total', 'help', ['repository', 'operation'], ours);
    const promH = new Histogram({ name: 'x_seconds', help: 'help', labelNames: ['repository', 'operation'], buckets: BUCKETS, registers: [theirs] });
    const promC = new Counter({ name: 'x_total', help: 'help', labelNames: ['repository', 'operation'], registers: [theirs] });
    for (const [repo, op, v] of OBSERVED) {
      fastH.child(repo, op).observe(v);
      fastC.child(repo, op).value += 1;
      promH.labels(repo, op).observe(v);
      promC.labels(repo, op).inc();
    }
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('x_seconds_bucket{le="0.001",repository="persons",operation="findById"} 2');
    expect(text).toContain('x_seconds_bucket{le="+Inf",repository="oidc",operation="upsert"} 2');
    expect(text).toContain('x_total{repository="persons",operation="findById"} 4');
  });

  it('hand out one child per label set, refuse a wrong number of values, and reset in place', async () => {
    const registry = new Registry();
    const c = new FastCounter('y_total', 'help', ['a'], registry);
    const child = c.child('1');
    expect(c.child('1')).toBe(child);
    expect(() => c.child('1', '2')).toThrow('1 label values expected');
    child.value += 3;
    registry.resetMetrics();
    child.value += 1;
    expect(await registry.metrics()).toContain('y_total{a="1"} 1');
    expect(() => new FastCounter('y_total', 'help', [], registry)).toThrow('already been registered');
  });
});
