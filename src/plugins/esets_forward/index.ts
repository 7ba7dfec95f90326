// Transparent forwarding, as esets_smtp does it: each client session is
// mirrored by one session with the mail server (server_addr:server_port).
// MAIL and RCPT are passed on as the client sends them and the server's own
// replies come back, so a recipient the server refuses is refused to the
// client at RCPT time; the message follows at queue time, after scanning, and
// the client gets the server's final reply. See README "esets_forward".

import DSN from 'haraka-dsn';
import constants from 'haraka-constants';
import type { SmtpReply } from '../../lib/smtp_reply';
import { replyText } from '../../lib/smtp_reply';
import type { Address, Connection, Next, Plugin } from '../shared/haraka';
import { relayConfig } from '../shared/relay_config';
import { EarlyForward, START_EARLY_FORWARD, StartEarlyForward } from '../shared/early_forward';
import { DownstreamError, DownstreamOptions, DownstreamSession, HeldMessage } from './downstream_session';

const SESSION = 'esets_downstream';
/** transaction note: a message sent early, its final dot held back */
const HELD = 'esets_forward.held';
const CONNECT_TIMEOUT_MS = 5_000;
const COMMAND_TIMEOUT_MS = 60_000;
const DATA_TIMEOUT_MS = 600_000;

type EsmtpParams = Record<string, string | null>;

interface ForwardPlugin extends Plugin {
  server: { host: string; port: number };
}

export function register(this: ForwardPlugin): void {
  const { config } = relayConfig(this);
  if (!config.server_addr || !config.server_port) {
    throw new Error('esets_forward: server_addr and server_port must be set in [smtp] of esets.cfg');
  }
  this.server = { host: config.server_addr, port: config.server_port };
  this.register_hook('mail', 'forward_mail');
  this.register_hook('rcpt', 'forward_rcpt');
  this.register_hook('queue', 'forward_message');
  // relaying clients (Haraka's notion) go to the same server, never to MX delivery
  this.register_hook('queue_outbound', 'forward_message');
  this.register_hook('reset_transaction', 'drop_held_message');
  this.register_hook('disconnect', 'close_downstream');
  this.register_hook('connect_init', 'client_nodelay');
}

/** Haraka leaves Nagle on for client sockets: ~40 ms per reply on loopback (README "Speed"). */
export function client_nodelay(this: ForwardPlugin, next: Next, connection: Connection): void {
  connection.client?.targetsocket?.setNoDelay?.(true);
  next();
}

export function forward_mail(this: ForwardPlugin, next: Next, connection: Connection, params: [Address, EsmtpParams]): void {
  const [from, mailParams] = params;
  const run = async (): Promise<void> => {
    const session = await sessionFor(this, connection);
    if (session.inTransaction) {
      session.inTransaction = false;
      const rset = await session.command('RSET');
      if (rset.code !== 250) throw new DownstreamError(`mail server refused RSET: ${rset.code} ${replyText(rset)}`);
    }
    const address = from.format(!session.capabilities.has('SMTPUTF8'));
    const reply = await session.command(`MAIL FROM:${address}${mailParamsFor(session, mailParams)}`);
    if (reply.code === 250) {
      session.inTransaction = true;
      connection.transaction?.notes.set(START_EARLY_FORWARD, (() => startEarly(connection)) satisfies StartEarlyForward);
    }
    answer(connection, next, reply, constants.cont);
  };
  run().catch((err: Error) => unavailable(this, connection, next, err));
}

export function forward_rcpt(this: ForwardPlugin, next: Next, connection: Connection, params: [Address, EsmtpParams]): void {
  const [rcpt, rcptParams] = params;
  const run = async (): Promise<void> => {
    const session = connection.notes[SESSION] as DownstreamSession | undefined;
    if (!session?.alive || !session.inTransaction) throw new DownstreamError('no mail transaction open with the mail server');
    const address = rcpt.format(!session.capabilities.has('SMTPUTF8'));
    const reply = await session.command(`RCPT TO:${address}${rcptParamsFor(session, rcptParams)}`);
    // the server's acceptance is what makes the relay accept a recipient
    answer(connection, next, reply, constants.ok);
  };
  run().catch((err: Error) => unavailable(this, connection, next, err));
}

export function forward_message(this: ForwardPlugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (!txn) return next();
  const run = async (): Promise<void> => {
    const session = connection.notes[SESSION] as DownstreamSession | undefined;
    if (!session?.alive || !session.inTransaction) throw new DownstreamError('the mail server session was lost before DATA');
    const held = txn.notes.get(HELD) as Held | undefined;
    const reply = held ? await finishHeld(held) : await session.sendMessage(txn.message_stream);
    session.inTransaction = false;
    txn.results.add(this, { [reply.code < 400 ? 'pass' : 'fail']: `${reply.code} ${replyText(reply)}` });
    if (reply.code === 250) {
      if (!connection.remote.closed) next(constants.ok, replyText(reply));
      return;
    }
    answer(connection, next, reply, constants.ok);
  };
  run().catch((err: Error) => unavailable(this, connection, next, err));
}

interface Held {
  message: Promise<HeldMessage | SmtpReply>;
  /** the server's reply to the message is in: the session is in step again */
  replied: boolean;
  dropped: boolean;
}

/** The early send (see shared/early_forward.ts): DATA and the message now, the dot at queue time. */
function startEarly(connection: Connection): EarlyForward | undefined {
  const txn = connection.transaction;
  const session = connection.notes[SESSION] as DownstreamSession | undefined;
  if (!txn || !session?.alive || !session.inTransaction || txn.notes.get(HELD)) return undefined;
  const held: Held = { message: session.beginMessage(txn.message_stream), replied: false, dropped: false };
  held.message.catch(() => undefined);
  txn.notes.set(HELD, held);
  return {
    streamFree: held.message.then((m) => ('written' in m ? m.written.catch(() => undefined) : undefined), () => undefined),
    abort: () => dropHeld(connection, held),
  };
}

async function finishHeld(held: Held): Promise<SmtpReply> {
  const message = await held.message;
  const reply = 'finish' in message ? await message.finish() : message;
  held.replied = true;
  return reply;
}

/** Unless the server has answered the message, its session is mid-DATA or out of step: drop it. */
function dropHeld(connection: Connection, held: Held): void {
  if (held.replied || held.dropped) return;
  held.dropped = true;
  // a session in DATA cannot take RSET (and QUIT would be message text): drop it now, the next MAIL opens a new one
  (connection.notes[SESSION] as DownstreamSession | undefined)?.destroy();
  held.message.then((m) => ('abort' in m ? m.abort() : undefined), () => undefined);
}

/** A message sent early but not accepted (rejected, deferred, discarded, or the client left). */
export function drop_held_message(this: ForwardPlugin, next: Next, connection: Connection): void {
  const held = connection.transaction?.notes.get(HELD) as Held | undefined;
  if (held) dropHeld(connection, held);
  next();
}

export function close_downstream(this: ForwardPlugin, next: Next, connection: Connection): void {
  const session = connection.notes[SESSION] as DownstreamSession | undefined;
  delete connection.notes[SESSION];
  session?.close();
  next();
}

async function sessionFor(plugin: ForwardPlugin, connection: Connection): Promise<DownstreamSession> {
  const existing = connection.notes[SESSION] as DownstreamSession | undefined;
  if (existing?.alive) return existing;
  existing?.close();
  const options: DownstreamOptions = {
    ...plugin.server,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    dataTimeoutMs: DATA_TIMEOUT_MS,
    heloName: connection.local.host || 'localhost',
    client: {
      addr: connection.remote.ip,
      // Haraka puts DNS failures in remote.host; XCLIENT wants [UNAVAILABLE] then
      name: /^[A-Za-z0-9.-]+$/.test(connection.remote.host ?? '') && !/^(DNSERROR|NXDOMAIN)$/.test(connection.remote.host!)
        ? connection.remote.host! : undefined,
      helo: connection.hello.host,
      proto: connection.hello.verb === 'EHLO' ? 'ESMTP' : 'SMTP',
    },
    onProtocol: (direction, line) => connection.logprotocol(plugin, `${direction}: ${line}`),
  };
  const session = await DownstreamSession.open(options);
  connection.notes[SESSION] = session;
  connection.results.add(plugin, { msg: `mail server ${session.where}, client handover ${session.clientHandover}` });
  return session;
}

/** Passes the server's reply to the client: 2xx as `success`, 4xx/5xx with the server's own code and text. */
function answer(connection: Connection, next: Next, reply: SmtpReply, success: number): void {
  if (connection.remote.closed) return;
  if (reply.code < 400) return success === constants.cont ? next() : next(success);
  next(reply.code < 500 ? constants.denysoft : constants.deny, toDsn(reply));
}

function unavailable(plugin: Plugin, connection: Connection, next: Next, err: Error): void {
  connection.logerror(plugin, err.message);
  const reply = err instanceof DownstreamError ? err.reply : undefined;
  if (reply) return answer(connection, next, reply, constants.cont);
  if (connection.remote.closed) return;
  next(constants.denysoft, DSN.create(451, 'Mail server unavailable, try again later', 4, 4));
}

function toDsn(reply: SmtpReply): DSN {
  const text = replyText(reply);
  const m = /^[245]\.(\d{1,3})\.(\d{1,3})\s*(.*)$/.exec(text);
  return m ? DSN.create(reply.code, m[3], Number(m[1]), Number(m[2])) : DSN.create(reply.code, text);
}

function mailParamsFor(session: DownstreamSession, params: EsmtpParams): string {
  const caps = session.capabilities;
  const out: string[] = [];
  if (params.SIZE && caps.has('SIZE')) out.push(`SIZE=${params.SIZE}`);
  if (params.BODY && caps.has('8BITMIME')) out.push(`BODY=${params.BODY}`);
  if ('SMTPUTF8' in params && caps.has('SMTPUTF8')) out.push('SMTPUTF8');
  if (caps.has('DSN')) {
    if (params.RET) out.push(`RET=${params.RET}`);
    if (params.ENVID) out.push(`ENVID=${params.ENVID}`);
  }
  return out.length ? ` ${out.join(' ')}` : '';
}

function rcptParamsFor(session: DownstreamSession, params: EsmtpParams): string {
  if (!session.capabilities.has('DSN')) return '';
  const out: string[] = [];
  if (params.NOTIFY) out.push(`NOTIFY=${params.NOTIFY}`);
  if (params.ORCPT) out.push(`ORCPT=${params.ORCPT}`);
  return out.length ? ` ${out.join(' ')}` : '';
}
