// The one summary line per message (esets_smtp(1) LOGGING: 'summary'
// messages): written once, when the client has its answer, saying what the
// policy decided, what the mail server did and what the client was told. The
// state (staged, written) is the message's own (session/relay_message).

import { writeLog } from '../shared/relay_log';
import { relayMetrics } from '../../io/relay_metrics';
import { refusedByHaraka } from '../../lib/policy';
import { summaryLine, word } from '../../lib/syslog';
import { PolicySummary, RelayMessage, sectionName } from '../../session/relay_message';
import { finalDotAt } from '../shared/haraka';
import type { Connection, Plugin, Transaction } from '../shared/haraka';
import { relayConfig } from '../shared/relay_config';

/** The policy's summary is ready: written when the client has its answer, or now if the client already left. */
export function stageSummary(
  plugin: Plugin, connection: Connection, txn: Transaction, message: RelayMessage, summary: PolicySummary,
): void {
  const now = message.stageSummary(summary);
  if (now) writeWhenServerKnown(plugin, connection, txn, message, now);
}

/** The transaction ended (answered, reset, or the client left): its summary, if it has one, is written. */
export function summarizeEnded(plugin: Plugin, connection: Connection, txn: Transaction, message: RelayMessage): void {
  const summary = message.endTransaction(() => refusedBeforePolicy(plugin, connection, txn, message));
  if (summary) writeWhenServerKnown(plugin, connection, txn, message, summary);
}

/** A message refused at the end of DATA before the policy ran (Haraka's size limit, a Received: loop). */
function refusedBeforePolicy(plugin: Plugin, connection: Connection, txn: Transaction, message: RelayMessage): PolicySummary | undefined {
  if (!message.captured) return undefined;
  const decision = refusedByHaraka(Number(clientAnswer(connection).slice(0, 3)));
  if (!decision) return undefined;
  const config = message.config ?? relayConfig(plugin).config;
  return { config, action: decision.action, option: decision.option, size: txn.data_bytes, scanMs: 0 };
}

/** If the client left while the message was on its way, the line waits for the server's answer (its own deadline bounds that). */
function writeWhenServerKnown(
  plugin: Plugin, connection: Connection, txn: Transaction, message: RelayMessage, summary: PolicySummary,
): void {
  const pending = message.awaitingServer;
  if (pending) void pending.then(() => writeSummary(plugin, connection, txn, message, summary));
  else writeSummary(plugin, connection, txn, message, summary);
}

/**
 * The first line of the client's answer to its message: Haraka's last reply,
 * unless that is still the 354 to DATA ('none': the client left first).
 */
function clientAnswer(connection: Connection): string {
  const last = connection.last_response;
  if (!last || last.startsWith('354')) return 'none';
  return last.split('\r\n')[0].replace(/^(\d{3})-/, '$1 ');
}

function writeSummary(plugin: Plugin, connection: Connection, txn: Transaction, message: RelayMessage, s: PolicySummary): void {
  const server = message.serverOutcome;
  const told = clientAnswer(connection);
  relayMetrics.message(s.action, s.option, s.size);
  // a client told 2xx about a message the server took (or the policy discarded) is the quiet case
  const delivered = /^2/.test(told) && (server === 'accepted' || s.action === 'discard');
  // word(): ours, written bare; every string (client, config, scanner, server) is quoted and escaped by lib/syslog
  writeLog(plugin, connection, s.config, summaryLine(delivered, [
    ['action', word(s.action)],
    ['by', word(s.option)],
    ['from', txn.mail_from.format()],
    ['to', txn.rcpt_to[0]?.format() ?? '<>'],
    ['section', sectionName(message.section)],
    ['rcpts', txn.rcpt_to.length],
    ['av', s.av],
    ['as', s.as || undefined],
    ['reason', s.reason],
    // the first Message-ID, when a message has several
    ['message_id', txn.header.get('Message-ID').split('\n')[0].trim() || word('-')],
    ['size', s.size],
    // what the mail server did (absent: not forwarded), and what the client was told
    ['server', server === undefined ? undefined : word(server)],
    ['reply', told === 'none' ? word('none') : told],
    ['scan', word(`${s.scanMs}ms`)],
    ['time', word(`${Math.max(0, Date.now() - finalDotAt(txn))}ms`)],
  ]));
}
