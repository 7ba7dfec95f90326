// Health and counts for monitoring: the manager process (Haraka's master,
// init_master: the launcher's manager, or a single-process Haraka) listens
// at http_listen for GET /health (io/health_probe: clamd and the mail server
// probed, the stop and the workers' heartbeats told) and GET /metrics
// (io/relay_metrics: every worker's counts, summed; io/process_metrics: every
// process's own figures). It watches the workers' heartbeats (io/worker_watch:
// a hung one is replaced), with or without http_listen. In each worker it
// counts the client connections and open sessions and sends the heartbeat. See docs/plugins/esets_status.md.

import constants from 'haraka-constants';
import { parseHostPort } from '../../lib/esets_options';
import { HealthProbe } from '../../io/health_probe';
import { countQuarantineFrom, relayMetrics } from '../../io/relay_metrics';
import { quarantineEventReader } from '../../io/quarantine_store';
import { quarantineDir } from '../../lib/quarantine';
import { trackClientSession } from '../../io/process_metrics';
import { isStopping } from '../../io/shutdown';
import { startStatusServer } from '../../io/status_server';
import { startHeartbeat, watchWorkers, workersState } from '../../io/worker_watch';
import type { Connection, Next, Plugin } from '../shared/haraka';
import { relayConfig } from '../shared/relay_config';
import { relayLog } from '../shared/relay_log';
import { useShortName } from '../shared/plugin_name';

export function register(this: Plugin): void {
  useShortName(this);
  relayConfig(this);
  this.register_hook('init_master', 'watch_workers');
  this.register_hook('init_master', 'start_status_listener');
  this.register_hook('init_child', 'start_heartbeat');
  this.register_hook('connect_init', 'count_connection');
}

export function watch_workers(this: Plugin, next: Next): void {
  // (in a single process there is nobody to watch: the process answering /health serves the clients itself)
  watchWorkers({ warn: (text) => relayLog(this).warning(text) });
  next();
}

export function start_heartbeat(this: Plugin, next: Next): void {
  startHeartbeat();
  next();
}

export function start_status_listener(this: Plugin, next: Next): void {
  const { config } = relayConfig(this);
  const where = config.http_listen ? parseHostPort(config.http_listen) : undefined;
  if (!where) return next();
  // the targets of the configuration in force at each probe (a reload may change them)
  const probe = new HealthProbe(() => {
    const c = relayConfig(this).config;
    return {
      clamd: c.action_av === 'scan' ? c.daemon_sock_path : [],
      server: { host: c.server_addr ?? '127.0.0.1', port: c.server_port ?? 25 },
    };
  }, () => ({ stopping: isStopping(), workers: workersState() }));
  // the quarantine's counts, from its events.log (esets_quar's releases, deletes and expiries too)
  const quarantineEvents = quarantineEventReader(() => {
    const rc = relayConfig(this);
    return quarantineDir(rc.config, rc.file);
  });
  quarantineEvents();
  countQuarantineFrom(quarantineEvents);
  startStatusServer(where.host, where.port, probe).then(
    () => {
      relayLog(this).info(`health and metrics at http://${config.http_listen}/health and /metrics`);
      next();
    },
    // Haraka does not start without it: the operator asked for it
    (err: Error) => next(constants.deny, `http_listen = ${config.http_listen}: ${err.message}`),
  );
}

export function count_connection(this: Plugin, next: Next, connection: Connection): void {
  relayMetrics.connection();
  trackClientSession(connection.client);
  next();
}
