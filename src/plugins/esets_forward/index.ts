// Transparent forwarding, as esets_smtp does it: Haraka's hooks turned into
// the steps of one MirroredSession (src/session), which owns the connection to
// the mail server (server_addr:server_port). The client gets the server's
// greeting, EHLO reply and replies, exactly; the message follows only after
// the policy accepted it, as the relay captured it. See docs/plugins/esets_forward.md.

import constants from 'haraka-constants';
import type { CapturedMessage } from '../../io/captured_message';
import { confirmedName, reverseName } from '../../io/confirmed_name';
import { spoolDir } from '../../io/process_dirs';
import { relayMetrics } from '../../io/relay_metrics';
import { DownstreamError, HandoverRefused, OutcomeUnknown } from '../../io/downstream_session';
import { HIDDEN_VERBS, hiddenParameter, loggableCommand, loggablePipelined } from '../../lib/ehlo_mirror';
import { HeaderSectionEditor } from '../../lib/smtp_data';
import { HOOK_TIMEOUT_S, SERVER_COMMAND_MS, SERVER_CONNECT_MS, stopTiming } from '../../lib/timeout_budget';
import { isDraining } from '../../io/shutdown';
import type { SmtpReply } from '../../lib/smtp_reply';
import { replyText } from '../../lib/smtp_reply';
import { word } from '../../lib/syslog';
import { AuthNotCarried, EsmtpParams, MirroredSession, ReopenAuth } from '../../session/mirrored_session';
import { finalDotAt } from '../shared/haraka';
import { noteNextHopSize } from '../shared/next_hop_size';
import type { Address, Connection, Next, Plugin, Transaction } from '../shared/haraka';
import { captureMessage, dropMessage, finishedMessage, messageOf } from '../shared/transaction_message';
import type { HeaderEdits } from '../../session/relay_message';
import { ConfigError, relayConfig } from '../shared/relay_config';
import { relayLog } from '../shared/relay_log';
import { relayWaits } from '../shared/client_timeout';
import { unlistedProxyLine } from '../shared/client_input';
import { answerAsServer, queuedReply } from '../shared/own_replies';
import { DATA_POST_PRIORITY, RCPT_PRIORITY, QUEUE_PRIORITY } from '../shared/hook_order';
import { useStopSignals } from '../shared/stop_signals';
import { pluginList } from '../shared/haraka_c_checks';
import { ourPluginName } from '../../lib/haraka_c_rules';
import { DSN, exactReply } from '../shared/exact_reply';
import { useShortName } from '../shared/plugin_name';
import { relayAnswer } from '../shared/relay_answer';

const SESSION = 'esets_mirrored_session';
const HANDOVER_ERROR_EVERY_MS = 60_000;
let lastHandoverError = 0;
/** verbs Haraka does not know that the server answers; AUTH has its own path */
const RELAYED_VERBS = new Set(['EXPN', 'ETRN']);

type ForwardPlugin = Plugin;

type HelpCommand = (this: HarakaConnection, args: string) => void;

export function register(this: ForwardPlugin): void {
  useShortName(this);
  const { config } = relayConfig(this);
  if (!config.server_addr || !config.server_port) {
    throw new ConfigError('esets_forward: server_addr and server_port must be set in [smtp] of esets.cfg');
  }
  // Haraka's hook timeout above every wait of ours (lib/timeout_budget): ours answer first, with their own reply
  this.timeout = HOOK_TIMEOUT_S;
  useStopSignals(this, stopTiming(config));
  onlyOurPlugins = pluginList(this).every((name) => ourPluginName(name).startsWith('esets_'));
  // the private spool now: folders that killed processes left behind are removed at start
  spoolDir();
  this.register_hook('connect_init', 'client_nodelay');
  this.register_hook('connect_init', 'own_replies');
  this.register_hook('connect', 'open_session');
  this.register_hook('helo', 'forward_helo');
  this.register_hook('ehlo', 'forward_ehlo');
  this.register_hook('capabilities', 'mirror_capabilities');
  this.register_hook('unrecognized_command', 'forward_verb');
  this.register_hook('vrfy', 'forward_vrfy');
  this.register_hook('noop', 'forward_noop');
  this.register_hook('quit', 'forward_quit');
  this.register_hook('mail', 'forward_mail');
  // after the user section and split_recipients (esets_user_config), before any other rcpt plugin:
  // the mail server decides each recipient, whatever the order of config/plugins
  this.register_hook('rcpt', 'forward_rcpt', RCPT_PRIORITY.forward);
  this.register_hook('data', 'capture_message');
  // after esets_policy's verdict (priority 0): the message goes to the server only once accepted
  this.register_hook('data_post', 'forward_message', DATA_POST_PRIORITY.forward);
  this.register_hook('queue', 'answer_accepted', QUEUE_PRIORITY.answered);
  // relaying clients (Haraka's notion) go to the same server, never to MX delivery
  this.register_hook('queue_outbound', 'answer_accepted', QUEUE_PRIORITY.answered);
  this.register_hook('reset_transaction', 'end_transaction');
  this.register_hook('disconnect', 'close_session');
}

/** config/plugins holds only esets_* plugins: nobody reads Haraka's copy of a message */
let onlyOurPlugins = false;

function sessionOf(connection: Connection): MirroredSession | undefined {
  const session = connection.notes[SESSION];
  return session instanceof MirroredSession ? session : undefined;
}

/** Haraka leaves Nagle on for client sockets: ~40 ms per reply on loopback (docs/developing.md "Speed and benchmarks"). */
export function client_nodelay(this: ForwardPlugin, next: Next, connection: Connection): void {
  connection.client?.targetsocket?.setNoDelay?.(true);
  next();
}

/** Haraka's own replies (before or without our hooks) in the server's words (shared/own_replies). */
export function own_replies(this: ForwardPlugin, next: Next, connection: Connection): void {
  answerAsServer(connection, (msg) => this.logwarn(msg));
  next();
}

function portOf(port: unknown): number | undefined {
  const n = Number(port);
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

/** The server session was opened again: whether the client, having authenticated, must do so again. */
function reopenLog(plugin: Plugin, connection: Connection, auth: ReopenAuth): void {
  const log = relayLog(plugin, connection);
  if (auth === 'none') return log.info('mail server session reopened (the server had closed it)');
  log.warning('mail server session reopened (the server had closed it): the client had authenticated, '
    + 'and is told 421 4.7.0 to authenticate again');
}

/** At connect: the server session (XCLIENT), and the server's greeting for the client. */
export function open_session(this: ForwardPlugin, next: Next, connection: Connection): void {
  // the configuration in force for each new session: a reload changes the server for the sessions after it
  const { config } = relayConfig(this);
  // a client that is no balancer sending PROXY (it would choose its own address): refused before the server
  // hears of it when the header is in by then (a balancer sends it at once), and in any case before the server's
  // greeting reaches the client (Haraka would refuse the line only after that greeting)
  const refuseProxy = (): boolean => {
    if (!unlistedProxyLine(connection)) return false;
    connection.results.add(this, { fail: 'PROXY from a host not in proxy_hosts' });
    relayLog(this, connection).info(`PROXY refused from ${connection.remote.ip}: not in proxy_hosts`);
    next(constants.denysoftdisconnect, relayAnswer(connection, { kind: 'proxy_refused' }));
    return true;
  };
  if (refuseProxy()) return;
  const run = async (): Promise<void> => {
    const name = await confirmedName(connection.remote.ip, connection.remote.host);
    if (refuseProxy()) return;
    // the client left during the lookup: its disconnect hook has run, and would never close a session opened now
    if (connection.remote.closed) return next();
    const session = new MirroredSession({
      host: config.server_addr!,
      port: config.server_port!,
      heloName: config.helo_name ?? (connection.local.host || 'localhost'),
      requireXclient: config.server_trusts_relay,
      target: () => {
        const now = relayConfig(this).config;
        return { host: now.server_addr!, port: now.server_port! };
      },
      connectTimeoutMs: SERVER_CONNECT_MS,
      commandTimeoutMs: SERVER_COMMAND_MS,
      onProtocol: (direction, line) => connection.logprotocol(this, `${direction}: ${line}`),
      onReopen: (auth) => reopenLog(this, connection, auth),
    }, {
      addr: connection.remote.ip,
      name,
      reverseName: name ? undefined : reverseName(connection.remote.host),
      // behind PROXY, Haraka has set these from the PROXY line (the client's port, the balancer's address)
      port: portOf(connection.remote.port),
      destAddr: connection.local.ip || undefined,
      destPort: portOf(connection.local.port),
    });
    connection.notes[SESSION] = session;
    const greeting = await session.open();
    if (refuseProxy()) return session.close();
    noteNextHopSize(connection, session.nextHopSize);
    connection.results.add(this, { msg: `mail server ${session.where}, client handover ${session.handover}` });
    relayLog(this, connection).debug(() => [
      ['event', word('server_session_opened')], ['session', word(connection.uuid)], ['server', word(session.where)],
      ['handover', word(session.handover)], ['greeting', greeting.code],
    ]);
    if (connection.remote.closed) {
      session.close();
      return next();
    }
    adaptConnection(connection, session);
    // a 554 greeting: Haraka then answers 503 to all but QUIT, as RFC 5321 3.1 wants (a 421 closes)
    if (greeting.code !== 220) return next(greeting.code < 500 ? constants.denysoftdisconnect : constants.deny, exactReply(greeting));
    next(constants.ok, exactReply(greeting));
  };
  relayWaits(connection, run).catch((err: Error) => {
    if (connection.remote.closed) return next();
    if (err instanceof HandoverRefused) {
      // the same fault for every client until the operator fixes it: said once a minute, not per connection
      if (Date.now() - lastHandoverError >= HANDOVER_ERROR_EVERY_MS) {
        lastHandoverError = Date.now();
        relayLog(this, connection).error(handoverFix(err));
      }
      return next(constants.denysoftdisconnect, relayAnswer(connection, { kind: 'server_refuses_relay' }));
    }
    relayLog(this, connection).error(err.message);
    const reply = err instanceof DownstreamError ? err.reply : undefined;
    if (reply) return next(reply.code < 500 ? constants.denysoftdisconnect : constants.denydisconnect, exactReply(reply));
    relayMetrics.serverFailure('connect');
    next(constants.denysoftdisconnect, relayAnswer(connection, { kind: 'server_unreachable' }));
  });
}

/** The handover error as the operator must read it: what to change, and where. */
function handoverFix(err: HandoverRefused): string {
  switch (err.fix) {
    case 'ehlo':
      return `${err.message}: set helo_name in [smtp] to a fully qualified name the mail server accepts`;
    case 'ipv6':
      return `${err.message}: the mail server must accept IPv6 addresses for IPv6 clients `
        + '(Postfix: inet_protocols = all, or ipv4, ipv6), or the relay must listen on IPv4 only';
    default:
      return `${err.message}: every client would reach the server as the relay. Authorize the relay for XCLIENT `
        + '(Postfix: smtpd_authorized_xclient_hosts), or set server_trusts_relay = no in [smtp] '
        + 'if the server treats the relay as untrusted';
  }
}

interface HarakaConnection extends Connection {
  cmd_help: HelpCommand;
  helo_respond(retval: number, msg: unknown): void;
  respond(code: number, msg: unknown): void;
}

/**
 * Three things Haraka does for every connection with no hook to change them,
 * changed for this connection only: it answers HELP itself (the server
 * answers here), it answers HELO with its own text even when a plugin gives
 * one (the server's is sent), and it logs each command line at protocol level
 * before any plugin sees it (AUTH credentials are masked).
 */
function adaptConnection(connection: Connection, session: MirroredSession): void {
  const conn = connection as HarakaConnection;
  conn.cmd_help = function help(this: HarakaConnection, args: string): void {
    relayWaits(connection, () => session.verb(args ? `HELP ${args}` : 'HELP'))
      .then((reply) => this.respond(reply.code, exactReply(reply)))
      .catch(() => this.respond(451, relayAnswer(connection, { kind: 'server_gone' })));
  };
  const heloRespond = conn.helo_respond;
  conn.helo_respond = function mirroredHelo(this: HarakaConnection, retval: number, msg: unknown): void {
    if (retval === constants.ok && msg instanceof DSN) return this.respond(msg.code, msg);
    heloRespond.call(this, retval, msg);
  };
  // Haraka logs each command line (protocol level), then the hook's params (info/debug): a line that holds a
  // credential is masked in both
  let secretLine = false;
  const logprotocol = conn.logprotocol;
  conn.logprotocol = function maskedProtocolLog(this: HarakaConnection, first: unknown, ...rest: unknown[]): void {
    if (typeof first === 'string' && first.startsWith('C: ')) {
      const shown = loggableCommand(first.slice(3), session.authenticating);
      secretLine = shown !== first.slice(3);
      return logprotocol.call(this, `C: ${shown}`, ...rest);
    }
    logprotocol.call(this, first, ...rest);
  };
  for (const level of ['loginfo', 'logdebug'] as const) {
    const log = conn[level];
    conn[level] = function maskedHookLog(this: HarakaConnection, first: unknown, ...rest: unknown[]): void {
      // Haraka's own debug lines of pipelined and early lines: "pipeline: LINE", "[early_talker]" {line}
      if (typeof first === 'string' && first.startsWith('pipeline: ')) {
        return log.call(this, `pipeline: ${loggablePipelined(first.slice(10))}`, ...rest);
      }
      const early = rest[0] as { line?: unknown } | undefined;
      if (first === '[early_talker]' && typeof early?.line === 'string') {
        return log.call(this, first, { ...early, line: loggablePipelined(early.line) }, ...rest.slice(1));
      }
      const hookRun = first as { hook?: string; params?: unknown } | undefined;
      if (secretLine && hookRun?.hook === 'unrecognized_command') return log.call(this, { ...hookRun, params: '****' }, ...rest);
      log.call(this, first, ...rest);
    };
  }
}

export function forward_helo(this: ForwardPlugin, next: Next, connection: Connection, name: string): void {
  step(this, connection, next, (s) => s.helloFrom('HELO', name), constants.ok);
}

export function forward_ehlo(this: ForwardPlugin, next: Next, connection: Connection, name: string): void {
  // a 2xx goes on to the capabilities hook, which mirrors the server's EHLO reply
  step(this, connection, next, (s) => s.helloFrom('EHLO', name), constants.cont);
}

/** The client's EHLO reply is the server's (lib/ehlo_mirror): Haraka's own list is replaced. */
export function mirror_capabilities(this: ForwardPlugin, next: Next, connection: Connection): void {
  const lines = sessionOf(connection)?.ehloLines();
  if (lines) connection.capabilities = lines;
  next();
}

/** AUTH (and the lines of its exchange), EXPN, ETRN: verbs Haraka does not know; the server answers. */
export function forward_verb(this: ForwardPlugin, next: Next, connection: Connection, params: [string, string?]): void {
  const session = sessionOf(connection);
  const [verb, rest] = params;
  const line = rest ? `${verb} ${rest}` : verb;
  if (!session) return next();
  const upper = verb.toUpperCase();
  // never to the server, whatever the session's state (Haraka answers 500)
  if (HIDDEN_VERBS.has(upper)) return next();
  if (session.authenticating) return step(this, connection, next, (s) => s.auth(line), constants.deny);
  if (upper === 'AUTH') return step(this, connection, next, (s) => s.auth(line), constants.deny);
  if (RELAYED_VERBS.has(upper)) return step(this, connection, next, (s) => s.verb(line), constants.deny);
  next();
}

export function forward_vrfy(this: ForwardPlugin, next: Next, connection: Connection): void {
  const line = (connection as Connection & { current_line?: string }).current_line ?? 'VRFY';
  step(this, connection, next, (s) => s.verb(line), constants.ok);
}

export function forward_noop(this: ForwardPlugin, next: Next, connection: Connection): void {
  // Haraka's noop answer ignores a plugin's text except on the deny path (which keeps the reply's code)
  step(this, connection, next, (s) => s.verb('NOOP'), constants.deny);
}

/** QUIT: the server's goodbye is the client's. */
export function forward_quit(this: ForwardPlugin, next: Next, connection: Connection): void {
  const session = sessionOf(connection);
  if (!session) return next();
  relayWaits(connection, () => session.quit())
    .then((reply) => next(constants.ok, exactReply(reply)))
    .catch(() => next());
}

export function forward_mail(this: ForwardPlugin, next: Next, connection: Connection, params: [Address, EsmtpParams]): void {
  const [from, mailParams] = params;
  // stopping (TERM): the transaction in progress finishes, no new one starts (RFC 5321 3.8)
  if (isDraining()) return next(constants.denysoftdisconnect, relayAnswer(connection, { kind: 'shutting_down' }));
  const hidden = hiddenParameter(mailParams);
  if (hidden) return next(constants.deny, relayAnswer(connection, { kind: 'parameter_not_supported', detail: hidden }));
  step(this, connection, next, (s) => s.mail(from.format(!s.utf8), mailParams), constants.ok);
}

export function forward_rcpt(this: ForwardPlugin, next: Next, connection: Connection, params: [Address, EsmtpParams]): void {
  const [rcpt, rcptParams] = params;
  // the server's acceptance is what makes the relay accept a recipient
  step(this, connection, next, (s) => s.rcpt(rcpt.format(!s.utf8), rcptParams), constants.ok);
}

/**
 * At DATA: the relay's own copy of the message. Haraka's copy is dropped when
 * only our plugins run (nothing else reads it); another plugin in
 * config/plugins (haraka-plugin-clamd, a spam plugin) may read it, so it stays.
 */
export function capture_message(this: ForwardPlugin, next: Next, connection: Connection): void {
  // the server closed the session after the client's RCPTs: 451 now, not after the whole message (a 354 first)
  if (sessionOf(connection)?.transactionLost) {
    return unavailable(this, connection, next, new DownstreamError('the mail server closed the session during the transaction'));
  }
  const txn = connection.transaction;
  if (txn) {
    captureMessage(txn);
    if (onlyOurPlugins) (txn as Transaction & { discard_data?: boolean }).discard_data = true;
  }
  sessionOf(connection)?.keepAlive();
  next();
}

/**
 * After the policy accepted the message: DATA and the message. A refusal is
 * answered here, where Haraka keeps the server's code (at queue time it would
 * turn every refusal into 450/550); a 250 is answered at queue time.
 */
export function forward_message(this: ForwardPlugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (!txn) return next();
  const state = messageOf(txn);
  if (state.discarded) return next();
  if (!state.decision) {
    // nothing reaches the server unscanned: esets_policy's hooks were skipped (transaction.notes.skip_plugins)
    relayLog(this, connection).error('message not delivered: esets_policy did not decide it (its hooks were skipped)');
    return next(constants.denysoft, relayAnswer(connection, { kind: 'scan_failed' }, txn));
  }
  const run = async (): Promise<void> => {
    const session = sessionOf(connection);
    const message = finishedMessage(txn);
    if (!session || !message) throw new DownstreamError('the mail server session was lost before DATA');
    // a message the relay stopped keeping is never sent in part (esets_policy answers it first)
    if (message.failure) throw new DownstreamError(`the message was not kept (${message.failure.kind})`);
    // the end of data as a whole (scanning, then the server) is due timeout_message after the final dot
    const deadline = finalDotAt(txn) + relayConfig(this).config.timeout_message * 1000;
    state.serverOutcome = 'unknown';
    const reply = await session.message(outgoing(message, state.headerEdits), deadline);
    relayMetrics.serverReply(reply.code);
    txn.results.add(this, { [reply.code < 400 ? 'pass' : 'fail']: `${reply.code} ${replyText(reply)}` });
    state.serverOutcome = reply.code < 400 ? 'accepted' : 'refused';
    // the summary line quotes it (and its queue id), whether the client is still there or not
    state.serverReply = reply;
    if (connection.remote.closed) return;
    if (reply.code >= 400) return next(refusal(reply), exactReply(reply));
    next();
  };
  let sent!: () => void;
  state.serverAnswered = new Promise<void>((resolve) => { sent = resolve; });
  relayWaits(connection, run).catch((err: Error) => {
    if (!(err instanceof OutcomeUnknown) && connection.remote.closed) {
      // the client left before the server took the message (its copy freed, or the sending cut): not sent, and
      // neither the relay's failure nor the server's (no ERROR, no WARNING summary an outside client could cause)
      state.serverOutcome = undefined;
      relayLog(this, connection).debug(() => [['event', word('not_sent')], ['reason', `the client left: ${err.message}`]]);
      return;
    }
    if (!(err instanceof OutcomeUnknown)) {
      if (state.serverOutcome) state.serverOutcome = 'failed';
      return unavailable(this, connection, next, err);
    }
    relayMetrics.serverFailure('outcome_unknown');
    // a 4xx may make a duplicate, a 250 may lose the message: RFC 5321 6.1 prefers the duplicate
    state.serverOutcome = 'unknown';
    relayLog(this, connection).error(err.message);
    if (!connection.remote.closed) {
      next(constants.denysoftdisconnect, relayAnswer(connection, { kind: 'answer_lost' }, txn));
    }
  }).finally(() => sent());
}

/** The server took the message: its 250 is the client's, exactly (without the transaction id Haraka appends). */
export function answer_accepted(this: ForwardPlugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  const reply = txn ? messageOf(txn).serverReply : undefined;
  if (!txn || !reply) return next();
  queuedReply(txn, exactReply(reply));
  // the text (Haraka's queue result and log); where own_replies is not installed, Haraka appends its id to it
  next(constants.ok, reply.lines.join('\n'));
}

/**
 * The message as it goes out: the header section with the policy's edits (a
 * message without one gets the relay's fields on top), then the rest byte for byte.
 */
async function* outgoing(message: CapturedMessage, edits: HeaderEdits | undefined): AsyncGenerator<Buffer> {
  if (edits) {
    // streamed: a message of headers only is all header section, and is never held whole
    const editor = new HeaderSectionEditor(edits.remove, edits.add, message.headerless);
    for await (const chunk of message.read(0, message.headerEnd)) yield* editor.push(chunk as Buffer);
    yield* editor.end();
    yield* message.read(message.headerEnd);
  } else {
    yield* message.read();
  }
}

export function end_transaction(this: ForwardPlugin, next: Next, connection: Connection): void {
  dropMessage(connection.transaction);
  sessionOf(connection)?.reset();
  next();
}

export function close_session(this: ForwardPlugin, next: Next, connection: Connection): void {
  dropMessage(connection.transaction);
  const session = sessionOf(connection);
  if (session) {
    session.close();
    relayLog(this, connection).debug(() => [
      ['event', word('server_session_closed')], ['session', word(connection.uuid)], ['server', word(session.where)],
    ]);
  }
  delete connection.notes[SESSION];
  next();
}

/**
 * One step of the session: the server's reply becomes the client's, exactly
 * (lib: a reply object Haraka sends as given). `success` is how a 2xx/3xx is
 * answered: ok (with the server's reply), cont (Haraka goes on), or deny (a
 * hook whose only way to send a reply of its own is the deny path, which
 * keeps the reply's code).
 */
function step(plugin: Plugin, connection: Connection, next: Next, call: (s: MirroredSession) => Promise<SmtpReply>, success: number): void {
  const session = sessionOf(connection);
  if (!session) return unavailable(plugin, connection, next, new DownstreamError('no session with the mail server'));
  relayWaits(connection, () => call(session))
    .then((reply) => {
      if (connection.remote.closed) return;
      // Haraka's NOOP answer knows only deny and denydisconnect
      if (reply.code >= 400) {
        return next(
          refusal(reply, success === constants.deny ? constants.denydisconnect : constants.denysoftdisconnect),
          exactReply(reply),
        );
      }
      if (success === constants.cont) return next();
      next(success, exactReply(reply));
    })
    .catch((err: Error) => unavailable(plugin, connection, next, err, success === constants.deny));
}

/** `viaDeny`: the hook answers only on the deny path (NOOP, unrecognized verbs): a 421 must close there too */
function unavailable(plugin: Plugin, connection: Connection, next: Next, err: Error, viaDeny = false): void {
  // (a lost authentication was logged as a warning when the session was reopened)
  if (!(err instanceof AuthNotCarried)) relayLog(plugin, connection).error(err.message);
  const reply = err instanceof DownstreamError ? err.reply : undefined;
  if (connection.remote.closed) return;
  if (err instanceof AuthNotCarried) {
    return next(viaDeny ? constants.denydisconnect : constants.denysoftdisconnect, relayAnswer(connection, { kind: 'auth_again' }));
  }
  if (reply) return next(refusal(reply, viaDeny ? constants.denydisconnect : constants.denysoftdisconnect), exactReply(reply));
  relayMetrics.serverFailure('session');
  next(constants.denysoft, relayAnswer(connection, { kind: 'server_gone' }));
}

/**
 * How Haraka is to answer a refusal of the server's: 4xx or 5xx, its code kept
 * (the reply object); a 421 closes the client's session too, as the server's
 * channel is closing (RFC 5321 3.8).
 */
function refusal(reply: SmtpReply, closing: number = constants.denysoftdisconnect): number {
  if (reply.code === 421) return closing;
  return reply.code < 500 ? constants.denysoft : constants.deny;
}
