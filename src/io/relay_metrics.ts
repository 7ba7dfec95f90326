// The relay's counts for monitoring (Prometheus, with prom-client), kept by
// the manager process: each worker sends its events over the cluster channel
// in batches (at most a second late), so the counts outlive a worker that dies (a sum of the
// workers' own counters would go back when one is replaced) and a scrape never
// waits for a worker. Events are checked against the known names and labels:
// a worker cannot make up metrics or labels. A single process counts itself.

import cluster, { Worker } from 'node:cluster';
import { Counter, Histogram, register } from 'prom-client';

export type ScanEngine = 'clamd' | 'spamd';
/** where the mail server failed the relay: at connect, or later in the session, or its answer to a message lost */
export type ServerFailure = 'connect' | 'session' | 'outcome_unknown';

const ACTIONS = new Set(['accept', 'defer', 'discard', 'reject']);
const ENGINES = new Set<string>(['clamd', 'spamd']);
const SERVER_FAILURES = new Set<string>(['connect', 'session', 'outcome_unknown']);
/** the options that decide a message, as the summary line names them */
const DECIDED_BY = /^(action_av(_infected|_notscanned|_deleted)?|action_as(_spam|_notscanned)?|message_format|haraka)$/;

const connections = new Counter({ name: 'esets_relay_connections_total', help: 'client connections accepted' });
const messages = new Counter({
  name: 'esets_relay_messages_total',
  help: "messages decided, by the policy's action and the option that decided it",
  labelNames: ['action', 'by'] as const,
});
const scanSeconds = new Histogram({
  name: 'esets_relay_scan_duration_seconds',
  help: 'time a scan engine took for one message',
  labelNames: ['engine'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
});
const scannerFailures = new Counter({
  name: 'esets_relay_scanner_failures_total',
  help: 'scanner daemons that could not be reached, died, hung or timed out during a scan',
  labelNames: ['engine'] as const,
});
const serverFailures = new Counter({
  name: 'esets_relay_server_failures_total',
  help: 'mail server failures: unreachable at connect, lost in a session, or its answer to a message lost',
  labelNames: ['kind'] as const,
});
const reloads = new Counter({
  name: 'esets_relay_config_reloads_total',
  help: "the manager's configuration reloads, by result (failed: the configuration in force stayed)",
  labelNames: ['result'] as const,
});

type MetricEvent =
  | { metric: 'connection' }
  | { metric: 'message'; action: string; by: string }
  | { metric: 'scan'; engine: string; seconds: number }
  | { metric: 'scanner_failure'; engine: string }
  | { metric: 'server_failure'; kind: string };

const CHANNEL = 'esets_relay.metric';

/** Counts an event that passed the checks; false when it did not (unknown name, label or value). */
function apply(e: MetricEvent): boolean {
  switch (e.metric) {
    case 'connection':
      connections.inc();
      return true;
    case 'message':
      if (!ACTIONS.has(e.action) || !DECIDED_BY.test(e.by)) return false;
      messages.inc({ action: e.action, by: e.by });
      return true;
    case 'scan':
      if (!ENGINES.has(e.engine) || !Number.isFinite(e.seconds) || e.seconds < 0) return false;
      scanSeconds.observe({ engine: e.engine }, e.seconds);
      return true;
    case 'scanner_failure':
      if (!ENGINES.has(e.engine)) return false;
      scannerFailures.inc({ engine: e.engine });
      return true;
    case 'server_failure':
      if (!SERVER_FAILURES.has(e.kind)) return false;
      serverFailures.inc({ kind: e.kind });
      return true;
    default:
      return false;
  }
}

/** a worker's events wait at most this long, or until there are this many, then go in one IPC message */
const BATCH_MS = 1_000;
const BATCH_EVENTS = 200;
let batch: MetricEvent[] = [];
let batchTimer: NodeJS.Timeout | undefined;

// Why batched: one process.send per event cost the manager about 0.14 ms of CPU
// per message (serialisation and parsing of several messages each), measured.
function flushBatch(): void {
  clearTimeout(batchTimer);
  batchTimer = undefined;
  if (!batch.length) return;
  const events = batch;
  batch = [];
  try {
    process.send?.({ [CHANNEL]: events });
  } catch {
    // the channel is closing (the worker stops): the counts are lost, the mail is not
  }
}

function record(e: MetricEvent): void {
  if (!cluster.isWorker) {
    apply(e);
    return;
  }
  batch.push(e);
  if (batch.length >= BATCH_EVENTS) flushBatch();
  else batchTimer ??= setTimeout(flushBatch, BATCH_MS).unref();
}

if (cluster.isWorker) {
  // a worker that stops (TERM drain, replaced) sends what it has counted first
  process.once('beforeExit', flushBatch);
  process.once('exit', flushBatch);
}

if (cluster.isPrimary) {
  cluster.on('message', (_worker: Worker, message: unknown) => {
    const events = (message as Record<string, unknown> | null)?.[CHANNEL];
    if (!Array.isArray(events) || events.length > BATCH_EVENTS) return;
    for (const e of events) if (e && typeof e === 'object') apply(e as MetricEvent);
  });
}

export const relayMetrics = {
  connection(): void { record({ metric: 'connection' }); },
  message(action: string, by: string): void { record({ metric: 'message', action, by }); },
  scan(engine: ScanEngine, seconds: number): void { record({ metric: 'scan', engine, seconds }); },
  scannerFailure(engine: ScanEngine): void { record({ metric: 'scanner_failure', engine }); },
  serverFailure(kind: ServerFailure): void { record({ metric: 'server_failure', kind }); },
  /** the manager's own reloads (every worker reloads the same files too) */
  reload(ok: boolean): void {
    if (!cluster.isWorker) reloads.inc({ result: ok ? 'ok' : 'failed' });
  },
};

/** The manager's counts of all workers, in Prometheus text format. */
export async function collectMetrics(): Promise<{ contentType: string; text: string }> {
  return { contentType: register.contentType, text: await register.metrics() };
}
