// The one summary line per message (esets_smtp(1) LOGGING: 'summary'
// messages): written once, when the client has its answer, saying what the
// policy decided, what the mail server did and what the client was told. The
// state (staged, written) is the message's own (session/relay_message).

import { writeLog } from '../shared/relay_log';
import { relayMetrics } from '../../io/relay_metrics';
import { refusedByHaraka } from '../../lib/policy';
import { summaryLine, word } from '../../lib/syslog';
import { isRelayFailure, QueueResult, queueAnswerText, queueIdOf, queueOutcome, ServerOutcome } from '../../lib/summary_outcome';
import { replyText } from '../../lib/smtp_reply';
import { traceId } from '../shared/trace_id';
import { PolicySummary, RelayMessage, sectionName } from '../../session/relay_message';
import { finalDotAt, remoteName } from '../shared/haraka';
import type { MessageInProgress } from '../../io/in_progress';
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

/** What the server did and answered: esets_forward's own account, else Haraka's queue result (queue/smtp_forward or another). */
function serverAnswer(
  txn: Transaction, message: RelayMessage, s: PolicySummary, told: string,
): { outcome?: ServerOutcome; reply?: string } {
  if (message.serverOutcome !== undefined) {
    const r = message.serverReply;
    return { outcome: message.serverOutcome, reply: r ? `${r.code} ${replyText(r)}` : undefined };
  }
  // only a message the policy let through reached a queue plugin
  if (s.action !== 'accept' || told === 'none') return {};
  const result = txn.results.get('queue') as QueueResult | undefined;
  return {
    outcome: queueOutcome(result, Number(told.slice(0, 3))),
    reply: queueAnswerText(result?.pass?.[0] ?? result?.fail?.[0]),
  };
}


function writeSummary(plugin: Plugin, connection: Connection, txn: Transaction, message: RelayMessage, s: PolicySummary): void {
  const told = clientAnswer(connection);
  const server = serverAnswer(txn, message, s, told);
  relayMetrics.message(s.action, s.option, s.size);
  const failure = isRelayFailure({ option: s.option, av: s.av, as: s.as, server: server.outcome, quarantine: s.quarantine });
  // word(): ours, written bare; every string (client, config, scanner, server) is quoted and escaped by lib/syslog
  writeLog(plugin, connection, s.config, summaryLine(failure, [
    // what a sender quotes (it is in the relay's replies) and Haraka's own lines of the session carry
    ['trace', word(traceId(connection, txn))],
    ['client', connection.remote.ip],
    ['client_name', remoteName(connection)],
    ['helo', connection.hello.host || undefined],
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
    // the quarantine entry (docs/quarantine.md), or 'failed'
    ['quarantine', s.quarantine === undefined ? undefined : word(s.quarantine)],
    // what the mail server did (absent: not forwarded), what it answered, and what the client was told
    ['server', server.outcome === undefined ? undefined : word(server.outcome)],
    ['server_reply', server.reply],
    ['queue_id', queueIdOf(server.reply)],
    ['reply', told === 'none' ? word('none') : told],
    ['scan', word(`${s.scanMs}ms`)],
    ['time', word(`${Math.max(0, Date.now() - finalDotAt(txn))}ms`)],
  ]));
}

/**
 * In the manager: a worker ended (killed, crashed, cut at the drain bound) with
 * messages in progress. It could not write their summaries; these lines stand
 * for them (WARNING: the relay failed them; the client got no answer and sends
 * again).
 */
export function summarizeCut(plugin: Plugin, pid: number | undefined, how: string, messages: readonly MessageInProgress[]): void {
  const config = relayConfig(plugin).config;
  for (const m of messages) {
    writeLog(plugin, { uuid: m.trace }, config, summaryLine(true, [
      ['trace', word(m.trace)],
      ['client', m.client],
      ['action', word('cut')],
      ['by', word('worker_died')],
      ['from', m.from],
      ['reason', `worker ${pid ?? '?'} ${how} while the message was in progress`],
      ['reply', word('none')],
    ]));
  }
}
