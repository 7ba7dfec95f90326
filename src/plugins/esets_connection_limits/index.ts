// Who the client is, and how many: caps on concurrent client connections
// (esets.cfg max_connections and max_connections_per_ip, per process; a
// connection over a cap is answered 421 4.7.0 at connect, before the relay
// opens a session with the mail server), one PROXY line per connection, the
// client's inactivity timeout (timeout_client, the configuration in force),
// and the client's share: bounded input, client_min_rate, timeout_session
// (shared/client_input); the SIZE advertised (message_size_limit and the next
// hop's), SIZE= and the spool's free space checked at MAIL.

import constants from 'haraka-constants';
import { ConnectionCounts } from '../../lib/connection_counts';
import { freeBytes } from '../../io/spool_space';
import { spoolDir } from '../../io/process_dirs';
import { advertisedSize, declaredTooBig, sizeLimit, sizeParameter, withSizeLine } from '../../lib/message_size';
import type { Address, Connection, Next, Plugin } from '../shared/haraka';
import { CAPABILITIES_PRIORITY, MAIL_PRIORITY } from '../shared/hook_order';
import { messageOf } from '../shared/transaction_message';
import { nextHopSize } from '../shared/next_hop_size';
import { clamdConfFile } from '../shared/clamd_conf_file';
import { checkSpool } from './spool_check';
import { relayConfig } from '../shared/relay_config';
import { setClientTimeout, stopClientTimer } from '../shared/client_timeout';
import { boundClientInput } from '../shared/client_input';
import { relayLog } from '../shared/relay_log';
import { useShortName } from '../shared/plugin_name';
import { relayAnswer } from '../shared/relay_answer';

const COUNTED = 'esets_connection_limits.counted';
/** the size limit told to the client at EHLO (lib/message_size) */
const SIZE_LIMIT = 'esets_connection_limits.size_limit';
const counts = new ConnectionCounts();

export function register(this: Plugin): void {
  useShortName(this);
  const { config } = relayConfig(this);
  const spool = checkSpool(config, clamdConfFile(this));
  // a process that cannot keep messages must not take them
  if (spool.error) throw new Error(`esets_connection_limits: ${spool.error}`);
  for (const warning of spool.warnings) relayLog(this, undefined, config).warning(warning);
  this.register_hook('connect_init', 'one_proxy_line');
  this.register_hook('connect_init', 'client_timeout');
  this.register_hook('connect', 'admit_connection');
  this.register_hook('disconnect', 'release_connection');
  // after esets_forward put the server's EHLO reply in place
  this.register_hook('capabilities', 'advertise_size', CAPABILITIES_PRIORITY.size);
  // before the MAIL goes to the server
  this.register_hook('mail', 'check_size_and_space', MAIL_PRIORITY.limits);
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
    return next(constants.denysoftdisconnect, relayAnswer(connection, { kind: 'too_many_connections' }));
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

/**
 * The SIZE the client is told: the next hop's (the server's EHLO reply that
 * esets_forward mirrors, or Haraka's own list) less room for the relay's
 * fields, or message_size_limit when lower. A list without SIZE keeps none.
 */
export function advertise_size(this: Plugin, next: Next, connection: Connection): void {
  const lines = connection.capabilities;
  if (!lines) return next();
  const limit = sizeLimit(advertisedSize(lines), relayConfig(this).config.message_size_limit);
  connection.notes[SIZE_LIMIT] = limit;
  connection.capabilities = withSizeLine(lines, limit);
  next();
}

/**
 * At MAIL: a declared SIZE over the limit is refused (552 5.3.4, RFC 1870), and
 * no transaction starts while the spool has less than spool_min_free (plus the
 * declared size) free (452 4.3.1, as Postfix's queue_minfree). The limit goes
 * with the transaction: past it the message is read to its end, not kept.
 */
export function check_size_and_space(
  this: Plugin, next: Next, connection: Connection, params: [Address, Record<string, string | null>],
): void {
  const { config } = relayConfig(this);
  const txn = connection.transaction;
  // the limit told at EHLO; a HELO client (told none) is held to the server's limit as the relay's EHLO learnt it
  const noted = connection.notes[SIZE_LIMIT];
  const limit = typeof noted === 'number' ? noted : sizeLimit(nextHopSize(connection), config.message_size_limit);
  if (txn) messageOf(txn).sizeLimit = limit;
  const declared = params[1]?.SIZE;
  if (declaredTooBig(declared, limit)) {
    connection.results.add(this, { fail: `SIZE=${declared} over ${limit}` });
    return next(constants.deny, relayAnswer(connection, { kind: 'too_big' }));
  }
  if (config.spool_min_free > 0) {
    const free = freeBytes(spoolDir());
    const wanted = config.spool_min_free + sizeParameter(declared ?? undefined);
    if (free !== undefined && free < wanted) {
      const plus = wanted > config.spool_min_free ? ` plus SIZE=${declared}` : '';
      const reason = `spool has ${free} bytes free, below spool_min_free ${config.spool_min_free}${plus}`;
      connection.results.add(this, { fail: reason });
      relayLog(this, connection, config).warning(`transaction refused: ${reason}`);
      return next(constants.denysoft, relayAnswer(connection, { kind: 'spool_full' }));
    }
  }
  next();
}
