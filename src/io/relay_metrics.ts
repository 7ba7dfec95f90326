// The relay's counts for monitoring (Prometheus, with prom-client), kept by
// the manager process: each worker sends its events over the cluster channel,
// so the counts outlive a worker that dies (a sum of the workers' own counters
// would go back when one is replaced) and a scrape never waits for a worker.
// Events are checked against the known names and labels: a worker cannot make
// up metrics or labels. A single process counts itself. Every label
// combination known up front is there at 0 from the start. The processes' own
// figures (CPU, memory, Node.js, open sessions) are io/process_metrics'.

import type { QuarantineEvent } from './quarantine_store';
import cluster, { Worker } from 'node:cluster';
import { Counter, Gauge, Histogram, register } from 'prom-client';
import type { HealthAnswer } from '../lib/health';
import type { DecidingOption } from '../lib/policy';
import type { VerdictAction } from '../lib/esets_options';
import { harakaInUse } from './haraka_version';
import { processMetricsText } from './process_metrics';

export type ScanEngine = 'clamd' | 'spamd';
/** where the mail server failed the relay: at connect, or later in the session, or its answer to a message lost */
export type ServerFailure = 'connect' | 'session' | 'outcome_unknown';

const ACTIONS: readonly VerdictAction[] = ['accept', 'defer', 'discard', 'reject'];
/** options whose value is an action: each may decide any of the four */
const ACTION_OPTIONS: readonly DecidingOption[] = [
  'action_av', 'action_av_infected', 'action_av_deleted', 'action_av_notscanned', 'action_as', 'action_as_spam', 'action_as_notscanned',
];
/** the refusals that are not an option's value, each with its one action (lib/policy) */
const FIXED_DECISIONS: readonly [VerdictAction, DecidingOption][] = [
  ['reject', 'message_format'], ['reject', 'message_size'], ['reject', 'haraka'], ['defer', 'haraka'],
  ['defer', 'policy_error'], ['defer', 'spool'],
];
const DECISIONS: readonly [string, string][] = [
  ...ACTION_OPTIONS.flatMap((by) => ACTIONS.map((action): [string, string] => [action, by])), ...FIXED_DECISIONS,
];
const DECISION_KEYS = new Set(DECISIONS.map(([action, by]) => `${action} ${by}`));
const ENGINES: readonly ScanEngine[] = ['clamd', 'spamd'];
const SERVER_FAILURES: readonly ServerFailure[] = ['connect', 'session', 'outcome_unknown'];
/** the mail server's answer to a message at the end of DATA, by its first digit */
const REPLY_CLASSES = ['2xx', '4xx', '5xx'] as const;
const QUARANTINE_EVENTS: readonly QuarantineEvent[] = ['stored', 'released', 'deleted', 'expired'];
type ReplyClass = (typeof REPLY_CLASSES)[number];

const KiB = 1024;
/** message sizes: from a short note to message_size_limit's default (100 MiB); larger ones fall in +Inf */
const MiB = KiB * KiB;
export const SIZE_BUCKETS = [KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB, 4 * MiB, 16 * MiB, 64 * MiB, 100 * MiB];

const connections = new Counter({ name: 'esets_relay_connections_total', help: 'client connections accepted' });
const messages = new Counter({
  name: 'esets_relay_messages_total',
  help: "messages decided, by the policy's action and the option that decided it",
  labelNames: ['action', 'by'] as const,
});
const messageBytes = new Histogram({
  name: 'esets_relay_message_size_bytes',
  help: 'size of each message decided (as received, bytes)',
  buckets: SIZE_BUCKETS,
});
const serverReplies = new Counter({
  name: 'esets_relay_server_replies_total',
  help: "the mail server's answers to the messages sent to it (end of DATA), by class: 2xx taken, 4xx deferred, 5xx refused",
  labelNames: ['class'] as const,
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
const quarantineEvents = new Counter({
  name: 'esets_relay_quarantine_events_total',
  help: "quarantine entries stored, released, deleted and expired since the manager started, as the store's events.log says "
    + '(esets_quar included)',
  labelNames: ['event'] as const,
});
const quarantineFailures = new Counter({
  name: 'esets_relay_quarantine_failures_total',
  help: 'messages to keep in the quarantine that could not be stored (deferred instead)',
});
const clamdUp = new Gauge({
  name: 'esets_relay_clamd_up',
  help: "1 when this clamd of daemon_sock_path answers PING (the manager's probe, as for /health; none when action_av is not scan)",
  labelNames: ['clamd'] as const,
});
const serverUp = new Gauge({
  name: 'esets_relay_server_up',
  help: "1 when the mail server greets with a 2xx (the manager's probe, as for /health)",
  labelNames: ['server'] as const,
});
const healthy = new Gauge({ name: 'esets_relay_healthy', help: '1 when /health answers 200 (it can serve), 0 when 503' });
const buildInfo = new Gauge({
  name: 'esets_relay_build_info',
  help: 'always 1: the relay, Haraka and Node.js versions as labels',
  labelNames: ['version', 'haraka', 'node'] as const,
});

for (const [action, by] of DECISIONS) messages.inc({ action, by }, 0);
for (const c of REPLY_CLASSES) serverReplies.inc({ class: c }, 0);
for (const engine of ENGINES) {
  scanSeconds.zero({ engine });
  scannerFailures.inc({ engine }, 0);
}
for (const kind of SERVER_FAILURES) serverFailures.inc({ kind }, 0);
for (const result of ['ok', 'failed']) reloads.inc({ result }, 0);
for (const event of QUARANTINE_EVENTS) quarantineEvents.inc({ event }, 0);
quarantineFailures.inc(0);
buildInfo.set({
  version: (require('../../../package.json') as { version: string }).version,
  haraka: harakaInUse()?.version ?? 'unknown',
  node: process.version,
}, 1);

type MetricEvent =
  | { metric: 'connection' }
  | { metric: 'message'; action: string; by: string; bytes: number }
  | { metric: 'server_reply'; class: string }
  | { metric: 'scan'; engine: string; seconds: number }
  | { metric: 'scanner_failure'; engine: string }
  | { metric: 'server_failure'; kind: string }
  | { metric: 'quarantine_failure' };

const CHANNEL = 'esets_relay.metric';

const isEngine = (e: string): boolean => (ENGINES as readonly string[]).includes(e);
const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;

/** Counts an event that passed the checks; false when it did not (unknown name, label or value). */
function apply(e: MetricEvent): boolean {
  switch (e.metric) {
    case 'connection':
      connections.inc();
      return true;
    case 'message':
      if (!DECISION_KEYS.has(`${e.action} ${e.by}`) || !isCount(e.bytes)) return false;
      messages.inc({ action: e.action, by: e.by });
      messageBytes.observe(e.bytes);
      return true;
    case 'server_reply':
      if (!(REPLY_CLASSES as readonly string[]).includes(e.class)) return false;
      serverReplies.inc({ class: e.class });
      return true;
    case 'scan':
      if (!isEngine(e.engine) || !isCount(e.seconds)) return false;
      scanSeconds.observe({ engine: e.engine }, e.seconds);
      return true;
    case 'scanner_failure':
      if (!isEngine(e.engine)) return false;
      scannerFailures.inc({ engine: e.engine });
      return true;
    case 'server_failure':
      if (!(SERVER_FAILURES as readonly string[]).includes(e.kind)) return false;
      serverFailures.inc({ kind: e.kind });
      return true;
    case 'quarantine_failure':
      quarantineFailures.inc();
      return true;
    default:
      return false;
  }
}

/** a worker's other events wait at most this long, or until there are this many, then go in one IPC message */
const BATCH_MS = 1_000;
const BATCH_EVENTS = 200;
/**
 * A message's count (the summary's: it comes once the client has its answer, after the server's) goes at
 * once, with what waits in the batch, the server's answer to that message among it: a worker killed
 * (kill -9) loses only the counts of the messages it had in progress, not a second of finished ones. One
 * IPC message per message costs the manager about 0.1 ms of CPU per message, measured (BENCHMARKS.md), so
 * the other events stay batched.
 */
const AT_ONCE = new Set<MetricEvent['metric']>(['message']);
let batch: MetricEvent[] = [];
let batchTimer: NodeJS.Timeout | undefined;

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
  if (AT_ONCE.has(e.metric) || batch.length >= BATCH_EVENTS) flushBatch();
  else batchTimer ??= setTimeout(flushBatch, BATCH_MS).unref();
}

if (cluster.isWorker) {
  // a worker that stops (TERM drain, replaced) sends what it has counted first
  process.once('beforeExit', flushBatch);
  process.once('exit', flushBatch);
}

/** A worker's batch as the manager receives it: each event counted if it passes the checks; returns how many did. */
export function applyWorkerEvents(events: unknown): number {
  if (!Array.isArray(events) || events.length > BATCH_EVENTS) return 0;
  return events.filter((e: unknown) => e !== null && typeof e === 'object' && apply(e as MetricEvent)).length;
}

if (cluster.isPrimary) {
  cluster.on('message', (_worker: Worker, message: unknown) => {
    applyWorkerEvents((message as Record<string, unknown> | null)?.[CHANNEL]);
  });
}

function replyClass(code: number): ReplyClass | undefined {
  return ({ 2: '2xx', 4: '4xx', 5: '5xx' } as const)[Math.floor(code / 100) as 2 | 4 | 5];
}

export const relayMetrics = {
  connection(): void { record({ metric: 'connection' }); },
  /** a message decided (the summary line's action and option), and its size in bytes */
  message(action: string, by: string, bytes: number): void { record({ metric: 'message', action, by, bytes }); },
  /** the mail server's reply to a message at the end of DATA (esets_forward) */
  serverReply(code: number): void {
    const c = replyClass(code);
    if (c) record({ metric: 'server_reply', class: c });
  },
  scan(engine: ScanEngine, seconds: number): void { record({ metric: 'scan', engine, seconds }); },
  scannerFailure(engine: ScanEngine): void { record({ metric: 'scanner_failure', engine }); },
  serverFailure(kind: ServerFailure): void { record({ metric: 'server_failure', kind }); },
  /** a message the quarantine should have kept and could not (it was deferred) */
  quarantineFailure(): void { record({ metric: 'quarantine_failure' }); },
  /** the manager's own reloads (every worker reloads the same files too) */
  reload(ok: boolean): void {
    if (!cluster.isWorker) reloads.inc({ result: ok ? 'ok' : 'failed' });
  },
};

/** /health's answer as gauges: each clamd, the server, the whole. */
function setHealth(answer: HealthAnswer): void {
  clamdUp.reset();
  for (const [address, state] of Object.entries(answer.body.clamd)) clamdUp.set({ clamd: address }, state === 'up' ? 1 : 0);
  serverUp.reset();
  for (const [address, state] of Object.entries(answer.body.server)) serverUp.set({ server: address }, state === 'up' ? 1 : 0);
  healthy.set(answer.status === 200 ? 1 : 0);
}

/**
 * The manager's counts of all workers, the health probe's state and every process's own figures, in
 * Prometheus text format. `health`: /health's answer (the same probe, at most one per 2 s).
 */
export async function collectMetrics(health: () => Promise<HealthAnswer>): Promise<{ contentType: string; text: string }> {
  const [answer, processes] = await Promise.all([health(), processMetricsText()]);
  setHealth(answer);
  countQuarantineEvents();
  return { contentType: register.contentType, text: `${await register.metrics()}${processes}` };
}

/** the quarantine's new events since the last read (io/quarantine_store eventReader); unset: no quarantine counted */
let quarantineEventSource: (() => string[]) | undefined;

/** The manager's reader of the quarantine's events.log, read at each scrape. */
export function countQuarantineFrom(source: () => string[]): void {
  quarantineEventSource = source;
}

function countQuarantineEvents(): void {
  let events: string[];
  try {
    events = quarantineEventSource?.() ?? [];
  } catch {
    // an unreadable folder: its counts wait for the next scrape, the scrape goes on
    return;
  }
  for (const event of events) if ((QUARANTINE_EVENTS as readonly string[]).includes(event)) quarantineEvents.inc({ event });
}
