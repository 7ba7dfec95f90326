// Who the client is, and how many: caps on concurrent client connections
// (esets.cfg max_connections and max_connections_per_ip, per process; a
// connection over a cap is answered 421 4.7.0 at connect, before the relay
// opens a session with the mail server), one PROXY line per connection, and
// the client's inactivity timeout (timeout_client, the configuration in force),
// and the client's share: bounded input, client_min_rate, timeout_session
// (shared/client_input).

import DSN from 'haraka-dsn';
import constants from 'haraka-constants';
import { ConnectionCounts } from '../../lib/connection_counts';
import type { Connection, Next, Plugin } from '../shared/haraka';
import { relayConfig } from '../shared/relay_config';
import { setClientTimeout, stopClientTimer } from '../shared/client_timeout';
import { boundClientInput } from '../shared/client_input';
import { relayLog } from '../shared/relay_log';

const COUNTED = 'esets_connection_limits.counted';
const counts = new ConnectionCounts();

export function register(this: Plugin): void {
  relayConfig(this);
  this.register_hook('connect_init', 'one_proxy_line');
  this.register_hook('connect_init', 'client_timeout');
  this.register_hook('connect', 'admit_connection');
  this.register_hook('disconnect', 'release_connection');
}

/**
 * Haraka runs connect_init once the client is known: after a balancer's PROXY
 * line, or at once for a direct client. From then on PROXY is refused: Haraka
 * would otherwise take a second one, sent by the client itself through the
 * balancer, as a new client address (an open relay: docs/load_balancer.md).
 */
export function one_proxy_line(this: Plugin, next: Next, connection: Connection): void {
  if (connection.proxy) connection.proxy.allowed = false;
  next();
}

/**
 * timeout_client, whoever runs Haraka (under `haraka -c` smtp.ini inactivity_timeout would decide);
 * the client's input bounded, client_min_rate and timeout_session enforced.
 */
export function client_timeout(this: Plugin, next: Next, connection: Connection): void {
  const { config } = relayConfig(this);
  setClientTimeout(connection, config.timeout_client);
  boundClientInput(connection, { timeoutClientS: config.timeout_client, minRate: config.client_min_rate, sessionS: config.timeout_session },
    (msg) => this.logwarn(msg), (reason) => relayLog(this, connection, config).warning(`client disconnected: ${reason}`));
  next();
}

export function admit_connection(this: Plugin, next: Next, connection: Connection): void {
  const { config } = relayConfig(this);
  const admission = counts.admit(connection.remote.ip, config.max_connections, config.max_connections_per_ip);
  if (!admission.admitted) {
    connection.results.add(this, { fail: admission.reason });
    relayLog(this, connection, config).warning(`connection refused: ${admission.reason}`);
    return next(constants.denysoftdisconnect, DSN.create(421, 'Too many connections, try again later', 7, 0));
  }
  connection.notes[COUNTED] = true;
  next();
}

export function release_connection(this: Plugin, next: Next, connection: Connection): void {
  stopClientTimer(connection);
  if (connection.notes[COUNTED]) {
    delete connection.notes[COUNTED];
    counts.release(connection.remote.ip);
  }
  next();
}
