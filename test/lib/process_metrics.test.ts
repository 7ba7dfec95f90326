// What the manager takes from its workers for /metrics: events counted only
// with known names and labels (io/relay_metrics), process figures only as far
// as they match the manager's own registry, aggregated into one value per
// series (io/process_metrics).

import assert from 'node:assert/strict';
import { register } from 'prom-client';
import { aggregate, validAnswer, WireMetric } from '../../src/io/process_metrics';
import { applyWorkerEvents } from '../../src/io/relay_metrics';

async function value(series: string): Promise<number | undefined> {
  const line = (await register.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('relay metrics: the workers\' events', () => {
  it('counts known events and drops unknown names, label pairs, classes and values', async () => {
    const accepted = 'esets_relay_messages_total{action="accept",by="action_as"}';
    const before = { accepted: (await value(accepted))!, sizes: (await value('esets_relay_message_size_bytes_count'))! };
    const counted = applyWorkerEvents([
      { metric: 'message', action: 'accept', by: 'action_as', bytes: 2048 },
      { metric: 'message', action: 'accept', by: 'message_size', bytes: 10 }, // not a pair the policy makes
      { metric: 'message', action: 'accept', by: 'action_as', bytes: -1 },
      { metric: 'message', action: 'made_up', by: 'action_as', bytes: 1 },
      { metric: 'server_reply', class: '3xx' },
      { metric: 'server_reply', class: '5xx' },
      { metric: 'made_up' },
      null,
    ]);
    assert.equal(counted, 2);
    assert.equal(await value(accepted), before.accepted + 1);
    assert.equal(await value('esets_relay_message_size_bytes_count'), before.sizes + 1);
    assert.equal(await value('esets_relay_messages_total{action="accept",by="message_size"}'), undefined);
    assert.equal(await value('esets_relay_server_replies_total{class="3xx"}'), undefined);
    assert.equal(applyWorkerEvents({ metric: 'connection' }), 0);
    assert.equal(applyWorkerEvents(Array.from({ length: 201 }, () => ({ metric: 'connection' }))), 0);
  });
});

const schema = new Map([
  ['process_cpu_seconds_total', { type: 'counter', labels: new Set<string>(), aggregator: 'sum' }],
  ['nodejs_gc_duration_seconds', { type: 'histogram', labels: new Set(['kind']), aggregator: 'sum' }],
]);

describe('process metrics: a worker\'s answer', () => {
  it('keeps the metrics of the manager\'s registry only, with their label names and finite values', () => {
    const kept = validAnswer([
      { name: 'process_cpu_seconds_total', help: '', type: 'counter', values: [{ value: 1.5, labels: {} }] },
      { name: 'made_up_total', help: '', type: 'counter', values: [{ value: 1, labels: {} }] },
      { name: 'process_cpu_seconds_total', help: '', type: 'gauge', values: [{ value: 1, labels: {} }] },
      {
        name: 'nodejs_gc_duration_seconds', help: '', type: 'histogram', values: [
          { value: 3, labels: { kind: 'minor', le: 0.01 }, metricName: 'nodejs_gc_duration_seconds_bucket' },
          { value: 1, labels: { worker: 'x' }, metricName: 'nodejs_gc_duration_seconds_count' },
          { value: Infinity, labels: { kind: 'minor' }, metricName: 'nodejs_gc_duration_seconds_sum' },
          { value: 1, labels: { kind: 'minor' }, metricName: 'other_metric' },
        ],
      },
    ], schema);
    assert.deepEqual(kept?.map((m) => [m.name, m.values.length]), [['process_cpu_seconds_total', 1], ['nodejs_gc_duration_seconds', 1]]);
    assert.equal(validAnswer('nonsense', schema), undefined);
    assert.equal(validAnswer(Array.from({ length: 101 }, () => ({})), schema), undefined);
  });

  it('aggregates into one value per series: sums, the lowest fd limit, the manager\'s start', async () => {
    const proc = (cpu: number, maxFds: number, start: number): WireMetric[] => [
      { name: 'process_cpu_seconds_total', help: 'cpu', type: 'counter', aggregator: 'sum', values: [{ value: cpu, labels: {} }] },
      { name: 'process_max_fds', help: 'fds', type: 'gauge', aggregator: 'sum', values: [{ value: maxFds, labels: {} }] },
      { name: 'process_start_time_seconds', help: 'start', type: 'gauge', aggregator: 'omit', values: [{ value: start, labels: {} }] },
    ];
    const text = await aggregate(proc(1, 1024, 100), [proc(2, 4096, 200), proc(3, 4096, 300)]).metrics();
    const lines = text.split('\n').filter((l) => !l.startsWith('#') && l);
    assert.deepEqual(lines, ['process_cpu_seconds_total 6', 'process_max_fds 1024', 'process_start_time_seconds 100']);
  });
});
