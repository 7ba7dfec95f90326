// The relay's counts for monitoring (Prometheus, with prom-client): kept in
// each process where the work happens (the workers), and collected by the
// manager for one /metrics for all of them (prom-client's AggregatorRegistry
// asks every worker over the cluster channel and sums).

import cluster from 'node:cluster';
import { AggregatorRegistry, Counter, Histogram, register } from 'prom-client';

export type ScanEngine = 'clamd' | 'spamd';
/** where the mail server failed the relay: at connect, or later in the session */
export type ServerFailure = 'connect' | 'session' | 'outcome_unknown';

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
// every process reloads the same files: the most any worker saw, not the sum
const reloads = new Counter({
  name: 'esets_relay_config_reloads_total',
  help: 'configuration reloads, by result (failed: the configuration in force stayed)',
  labelNames: ['result'] as const,
  aggregator: 'max',
});

export const relayMetrics = {
  connection(): void { connections.inc(); },
  message(action: string, by: string): void { messages.inc({ action, by }); },
  scan(engine: ScanEngine, seconds: number): void { scanSeconds.observe({ engine }, seconds); },
  scannerFailure(engine: ScanEngine): void { scannerFailures.inc({ engine }); },
  serverFailure(kind: ServerFailure): void { serverFailures.inc({ kind }); },
  reload(ok: boolean): void { reloads.inc({ result: ok ? 'ok' : 'failed' }); },
};

// a worker answers the manager's requests for its metrics once this registry exists
const aggregator = new AggregatorRegistry();

/** All processes' metrics, in Prometheus text format: the workers' summed, or this process's when it has none. */
export async function collectMetrics(): Promise<{ contentType: string; text: string }> {
  const workers = cluster.isPrimary ? Object.values(cluster.workers ?? {}).filter((w) => w?.isConnected()) : [];
  const text = workers.length ? await aggregator.clusterMetrics() : await register.metrics();
  return { contentType: register.contentType, text };
}
