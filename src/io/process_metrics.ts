// Every relay process's own figures for /metrics: prom-client's default
// process and Node.js metrics, and the sessions open (clients, and connections
// to the mail server). Each process keeps its own registry; at a scrape the
// manager asks each worker for its registry over the cluster channel and waits
// at most WORKER_ANSWER_MS: a worker that does not answer in time (stopped,
// busy, dying) is shown by its last answer, and the scrape never waits longer.
// The manager's and the workers' figures are aggregated into one value per
// series (prom-client's aggregators: sums for CPU, memory, handles and
// sessions; averages, minimum or maximum for event loop lag). The counters of
// a worker that has exited stay in the sums (its last answer), so a total such
// as process_cpu_seconds_total never goes back when a worker is replaced.

import cluster, { Worker } from 'node:cluster';
import type net from 'node:net';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/** how long a scrape waits for the workers' answers */
export const WORKER_ANSWER_MS = 1_000;
const REQUEST = 'esets_relay.process_metrics_req';
const ANSWER = 'esets_relay.process_metrics';
/** an answer's bounds: a worker cannot fill the manager's memory or the scrape with made-up series */
const MAX_METRICS = 100;
const MAX_VALUES = 300;
const MAX_LABEL_CHARS = 100;

/** how often the event loop's delay is sampled */
const EVENT_LOOP_SAMPLE_MS = 100;
const own = new Registry();
const cpuBefore = process.cpuUsage();
// (the event loop's delay sampled every 100 ms, not prom-client's 10 ms: a timer ten times a second costs each
// process far less CPU while idle, and a blocked loop still shows)
collectDefaultMetrics({ register: own, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
// prom-client counts CPU from here on: the process's CPU before (loading Haraka and the plugins) is added, so the
// counters hold the process's whole CPU time, as process_cpu_seconds_total means elsewhere
for (const [name, micros] of [
  ['process_cpu_user_seconds_total', cpuBefore.user],
  ['process_cpu_system_seconds_total', cpuBefore.system],
  ['process_cpu_seconds_total', cpuBefore.user + cpuBefore.system],
] as const) (own.getSingleMetric(name) as Counter | undefined)?.inc(micros / 1e6);

let clientSessions = 0;
let serverSessions = 0;
new Gauge({
  name: 'esets_relay_client_sessions',
  help: 'client SMTP sessions open now',
  registers: [own],
  collect() { this.set(clientSessions); },
});
new Gauge({
  name: 'esets_relay_server_sessions',
  help: 'connections to the mail server open now (esets_forward)',
  registers: [own],
  collect() { this.set(serverSessions); },
});
/** workers whose figures in this scrape are from an earlier one (no answer within WORKER_ANSWER_MS) */
const late = new Gauge({
  name: 'esets_relay_workers_not_answering',
  help: `workers that did not answer this scrape within ${WORKER_ANSWER_MS / 1000} s (stopped, busy or dying): their last answer is shown`,
  registers: [own],
  aggregator: 'sum',
});

/** the client's connection as Haraka holds it: a stream around its socket (the TLS one after STARTTLS) */
export interface ClientStream {
  targetsocket?: { destroyed?: boolean };
  once?(event: 'close', listener: () => void): unknown;
}

/** A client session: counted from now until its connection closes. */
export function trackClientSession(client: ClientStream | undefined): void {
  if (!client?.once || client.targetsocket?.destroyed) return;
  clientSessions++;
  client.once('close', () => { clientSessions--; });
}

/** A connection to the mail server: counted from now until it closes. */
export function trackServerSession(socket: net.Socket): void {
  if (socket.destroyed) return;
  serverSessions++;
  socket.once('close', () => { serverSessions--; });
}

export interface WireValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

export interface WireMetric {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: WireValue[];
}

async function ownMetrics(): Promise<WireMetric[]> {
  return (await own.getMetricsAsJSON()) as unknown as WireMetric[];
}

interface MetricShape {
  type: string;
  labels: Set<string>;
  aggregator: string;
}

/**
 * A worker's answer kept only as far as it matches this process's own registry: the same metric names and
 * types, label names of that metric (and `le` for histogram buckets), finite values, bounded counts.
 */
export function validAnswer(answer: unknown, schema: Map<string, MetricShape>): WireMetric[] | undefined {
  if (!Array.isArray(answer) || answer.length > MAX_METRICS) return undefined;
  const kept: WireMetric[] = [];
  for (const m of answer as Partial<WireMetric>[]) {
    const known = typeof m?.name === 'string' ? schema.get(m.name) : undefined;
    if (!known || m.type !== known.type || !Array.isArray(m.values) || m.values.length > MAX_VALUES) continue;
    const values = m.values.filter((v) => typeof v?.value === 'number' && Number.isFinite(v.value)
      && (v.metricName === undefined || (typeof v.metricName === 'string' && v.metricName.startsWith(m.name!)))
      && v.labels && typeof v.labels === 'object'
      && Object.entries(v.labels).every(([k, x]) => (known.labels.has(k) || (k === 'le' && known.type === 'histogram'))
        && (typeof x === 'number' || (typeof x === 'string' && x.length <= MAX_LABEL_CHARS))));
    kept.push({ name: m.name!, help: m.help ?? '', type: known.type, aggregator: known.aggregator, values });
  }
  return kept;
}

/** each metric name of this process's registry → its type, label names and aggregator */
function ownSchema(): Map<string, MetricShape> {
  const schema = new Map<string, MetricShape>();
  for (const metric of own.getMetricsAsArray()) {
    const m = metric as unknown as { name: string; type: string; labelNames?: string[]; aggregator?: string };
    schema.set(m.name, { type: m.type, labels: new Set(m.labelNames ?? []), aggregator: m.aggregator ?? 'sum' });
  }
  return schema;
}

/** what a figure means summed over processes: the limit of one process, the relay's start (the manager's) */
const AGGREGATOR: Record<string, string> = { process_max_fds: 'min', process_start_time_seconds: 'first' };

/**
 * One value per series over the processes: the manager's first (its start time is the relay's), each
 * metric's own aggregator otherwise (prom-client's defaults: sum where a metric names none).
 */
export function aggregate(manager: WireMetric[], others: WireMetric[][]): Registry {
  const withAggregator = (list: WireMetric[]): WireMetric[] => list.map((m) => ({ ...m, aggregator: AGGREGATOR[m.name] ?? m.aggregator }));
  return AggregatorRegistry.aggregate([withAggregator(manager), ...others.map(withAggregator)]);
}

/** A worker's counters and histograms carried over once it has exited: the sums never go back. */
function countersOf(list: WireMetric[]): WireMetric[] {
  return list.filter((m) => m.type === 'counter' || m.type === 'histogram');
}

interface WorkerFigures {
  last?: WireMetric[];
  /** the request it has not answered yet (a stopped worker is not sent one per scrape) */
  pending?: { id: number; waiters: (() => void)[] };
}

const workers = new Map<number, WorkerFigures>();
/** the exited workers' counters, summed */
let retired: WireMetric[] = [];
/** folds run one after another (two workers exiting together both count) */
let folding: Promise<void> = Promise.resolve();
let nextRequest = 1;

if (cluster.isPrimary) {
  cluster.on('message', (worker: Worker, message: unknown) => {
    const answer = (message as Record<string, unknown> | null)?.[ANSWER] as { id?: unknown; metrics?: unknown } | undefined;
    const figures = answer && workers.get(worker.id);
    if (!figures) return;
    const metrics = validAnswer(answer.metrics, ownSchema());
    if (metrics) figures.last = metrics;
    if (answer.id === figures.pending?.id) answered(figures);
  });
}

/** The request pending for a worker is over (answered, or its channel closed): its waiters go on. */
function answered(figures: WorkerFigures | undefined): void {
  const waiters = figures?.pending?.waiters ?? [];
  if (figures) figures.pending = undefined;
  for (const w of waiters) w();
}

/** A worker has exited: its counters join the retired sums (its gauges, such as memory, are gone with it). */
function retire(worker: Worker): void {
  const figures = workers.get(worker.id);
  workers.delete(worker.id);
  if (!figures?.last) return;
  const kept = countersOf(figures.last);
  // (folded at once: the list stays one entry per metric however many workers come and go)
  folding = folding.then(async () => {
    const sum = await aggregate(retired.length ? retired : kept, retired.length ? [kept] : []).getMetricsAsJSON();
    retired = countersOf(sum as unknown as WireMetric[]);
  }).catch(() => undefined);
}

if (cluster.isWorker) {
  process.on('message', (message: unknown) => {
    const id = (message as Record<string, unknown> | null)?.[REQUEST];
    if (typeof id !== 'number') return;
    void ownMetrics().then((metrics) => {
      if (process.connected) process.send?.({ [ANSWER]: { id, metrics } }, undefined, {}, () => undefined);
    });
  });
}

/** Asks a worker for its figures; resolves when it answers or after `ms`, whichever comes first. */
function ask(worker: Worker, ms: number): Promise<boolean> {
  let figures = workers.get(worker.id);
  if (!figures) {
    figures = {};
    workers.set(worker.id, figures);
    // the worker's own events (the launcher's supervisor replaces the cluster-wide 'exit' listeners)
    worker.once('exit', () => retire(worker));
    // a dead worker's channel closes at once: nothing more to wait for
    worker.once('disconnect', () => answered(workers.get(worker.id)));
  }
  if (!figures.pending) {
    figures.pending = { id: nextRequest++, waiters: [] };
    try {
      worker.send({ [REQUEST]: figures.pending.id }, undefined, () => undefined);
    } catch {
      // its channel is closed: it is exiting
    }
  }
  const pending = figures.pending;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    pending.waiters.push(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Every process's figures, aggregated, in Prometheus text format (waits at most WORKER_ANSWER_MS). */
export async function processMetricsText(): Promise<string> {
  const live = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
  const answered = await Promise.all(live.map((w) => ask(w, WORKER_ANSWER_MS)));
  late.set(answered.filter((a) => !a).length);
  await folding;
  const others = [...live.map((w) => workers.get(w.id)?.last ?? []), retired];
  return aggregate(await ownMetrics(), others.filter((m) => m.length)).metrics();
}
