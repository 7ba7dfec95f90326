// Transparent forwarding, as esets_smtp does it: each client session is
// mirrored by one session with the mail server (server_addr:server_port),
// opened when the client connects. The server judges the real client
// (XCLIENT, then the client's own HELO/EHLO); MAIL and RCPT are passed on as
// the client sends them and the server's own replies come back; the message
// follows only after the policy accepted it, as the relay captured it
// (un-stuffed once, stuffed again here). See README "esets_forward".

import HarakaDsn from 'haraka-dsn';
import constants from 'haraka-constants';
import { editHeaderSection } from '../../lib/smtp_data';
import type { SmtpReply } from '../../lib/smtp_reply';
import { replyText } from '../../lib/smtp_reply';
import { confirmedName, reverseName } from '../../io/confirmed_name';
import type { Address, Connection, Next, Plugin, Transaction } from '../shared/haraka';
import { captureMessage, dropMessage, finishedMessage } from '../shared/message_capture';
import { HEADER_EDITS, HeaderEdits } from '../shared/header_edits';
import { relayConfig } from '../shared/relay_config';
import { exactReply } from '../shared/server_reply';
import { ClientIdentity, DownstreamError, DownstreamOptions, DownstreamSession, HandoverRefused } from './downstream_session';
import type { CapturedMessage } from '../../io/captured_message';

const SESSION = 'esets_downstream';
const IDENTITY = 'esets_client_identity';
const CONNECT_TIMEOUT_MS = 5_000;
const COMMAND_TIMEOUT_MS = 60_000;
const DATA_TIMEOUT_MS = 600_000;

type EsmtpParams = Record<string, string | null>;

interface ForwardPlugin extends Plugin {
  server: { host: string; port: number };
  requireXclient: boolean;
}

export function register(this: ForwardPlugin): void {
  const { config } = relayConfig(this);
  if (!config.server_addr || !config.server_port) {
    throw new Error('esets_forward: server_addr and server_port must be set in [smtp] of esets.cfg');
  }
  this.server = { host: config.server_addr, port: config.server_port };
  this.requireXclient = config.server_trusts_relay;
  this.register_hook('connect_init', 'client_nodelay');
  this.register_hook('connect', 'open_downstream');
  this.register_hook('helo', 'forward_helo');
  this.register_hook('ehlo', 'forward_ehlo');
  this.register_hook('mail', 'forward_mail');
  this.register_hook('rcpt', 'forward_rcpt');
  this.register_hook('data', 'capture_message');
  this.register_hook('queue', 'forward_message');
  // relaying clients (Haraka's notion) go to the same server, never to MX delivery
  this.register_hook('queue_outbound', 'forward_message');
  this.register_hook('reset_transaction', 'drop_message');
  this.register_hook('disconnect', 'close_downstream');
}

/** Haraka leaves Nagle on for client sockets: ~40 ms per reply on loopback (README "Speed"). */
export function client_nodelay(this: ForwardPlugin, next: Next, connection: Connection): void {
  connection.client?.targetsocket?.setNoDelay?.(true);
  next();
}

/** At connect: the server session, XCLIENT, and the server's greeting for the client. */
export function open_downstream(this: ForwardPlugin, next: Next, connection: Connection): void {
  const run = async (): Promise<void> => {
    const identity: ClientIdentity = {
      addr: connection.remote.ip,
      name: await confirmedName(connection.remote.ip, connection.remote.host),
    };
    if (!identity.name) identity.reverseName = reverseName(connection.remote.host);
    connection.notes[IDENTITY] = identity;
    const session = await openSession(this, connection);
    if (connection.remote.closed) return next();
    const greeting = session.greeting;
    if (greeting.code !== 220) return next(greeting.code < 500 ? constants.denysoftdisconnect : constants.denydisconnect, exactReply(greeting));
    next(constants.ok, greeting.lines.length ? greeting.lines : undefined);
  };
  run().catch((err: Error) => {
    if (connection.remote.closed) return next();
    if (err instanceof HandoverRefused) {
      connection.logerror(this, `${err.message}: every client would reach the server as the relay. Authorize the relay for XCLIENT `
        + '(Postfix: smtpd_authorized_xclient_hosts), or set server_trusts_relay = no in [smtp] if the server treats the relay as untrusted');
      return next(constants.denysoftdisconnect, HarakaDsn.create(421, 'Mail server does not accept this relay, try again later', 3, 0));
    }
    connection.logerror(this, err.message);
    const reply = err instanceof DownstreamError ? err.reply : undefined;
    if (reply) return next(reply.code < 500 ? constants.denysoftdisconnect : constants.denydisconnect, exactReply(reply));
    next(constants.denysoftdisconnect, HarakaDsn.create(421, 'Mail server unavailable, try again later', 4, 1));
  });
}

export function forward_helo(this: ForwardPlugin, next: Next, connection: Connection, name: string): void {
  forwardHello(this, connection, next, 'HELO', name);
}

export function forward_ehlo(this: ForwardPlugin, next: Next, connection: Connection, name: string): void {
  forwardHello(this, connection, next, 'EHLO', name);
}

/** The client's own HELO/EHLO name goes to the server, which judges it after XCLIENT. */
function forwardHello(plugin: ForwardPlugin, connection: Connection, next: Next, verb: 'HELO' | 'EHLO', name: string): void {
  const run = async (): Promise<void> => {
    const identity = connection.notes[IDENTITY] as ClientIdentity | undefined;
    if (identity) {
      identity.helo = name;
      identity.proto = verb === 'EHLO' ? 'ESMTP' : 'SMTP';
    }
    const session = await liveSession(plugin, connection);
    const reply = await session.hello(verb, name);
    answer(connection, next, reply, constants.cont);
  };
  run().catch((err: Error) => unavailable(plugin, connection, next, err));
}

export function forward_mail(this: ForwardPlugin, next: Next, connection: Connection, params: [Address, EsmtpParams]): void {
  const [from, mailParams] = params;
  const run = async (): Promise<void> => {
    const session = await liveSession(this, connection);
    if (session.inTransaction) {
      session.inTransaction = false;
      const rset = await session.command('RSET');
      if (rset.code !== 250) throw new DownstreamError(`mail server refused RSET: ${rset.code} ${replyText(rset)}`);
    }
    await session.forwardClient();
    const address = from.format(!session.capabilities.has('SMTPUTF8'));
    const reply = await session.command(`MAIL FROM:${address}${mailParamsFor(session, mailParams)}`);
    if (reply.code === 250) session.inTransaction = true;
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

/** At DATA: the relay's own copy of the message; Haraka's copy is not needed (nothing reads it). */
export function capture_message(this: ForwardPlugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (txn) {
    captureMessage(txn);
    (txn as Transaction & { discard_data?: boolean }).discard_data = true;
  }
  next();
}

export function forward_message(this: ForwardPlugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (!txn) return next();
  const run = async (): Promise<void> => {
    const session = connection.notes[SESSION] as DownstreamSession | undefined;
    if (!session?.alive || !session.inTransaction) throw new DownstreamError('the mail server session was lost before DATA');
    const message = finishedMessage(txn);
    if (!message) throw new Error('no captured message to forward');
    const reply = await session.sendMessage(outgoing(message, txn.notes.get(HEADER_EDITS) as HeaderEdits | undefined));
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

/** The message as it goes out: the header section with the policy's edits, then the rest byte for byte. */
async function* outgoing(message: CapturedMessage, edits: HeaderEdits | undefined): AsyncGenerator<Buffer> {
  if (edits) {
    const header = await message.readAll(0, message.headerEnd);
    yield editHeaderSection(header, edits.remove, edits.add);
    yield* message.read(message.headerEnd);
  } else {
    yield* message.read();
  }
}

export function drop_message(this: ForwardPlugin, next: Next, connection: Connection): void {
  dropMessage(connection.transaction);
  next();
}

export function close_downstream(this: ForwardPlugin, next: Next, connection: Connection): void {
  dropMessage(connection.transaction);
  const session = connection.notes[SESSION] as DownstreamSession | undefined;
  delete connection.notes[SESSION];
  session?.close();
  next();
}

/** The session, opened again (XCLIENT, then the client's HELO) if the server went away between transactions. */
async function liveSession(plugin: ForwardPlugin, connection: Connection): Promise<DownstreamSession> {
  const existing = connection.notes[SESSION] as DownstreamSession | undefined;
  if (existing?.alive) return existing;
  existing?.close();
  const session = await openSession(plugin, connection);
  const identity = connection.notes[IDENTITY] as ClientIdentity | undefined;
  if (session.greeting.code !== 220) throw new DownstreamError(`mail server greeting: ${session.greeting.code} ${replyText(session.greeting)}`, session.greeting);
  if (identity?.helo) {
    const hello = await session.hello(identity.proto === 'SMTP' ? 'HELO' : 'EHLO', identity.helo);
    if (hello.code !== 250) throw new DownstreamError(`mail server refused ${identity.helo}: ${hello.code} ${replyText(hello)}`, hello);
  }
  return session;
}

async function openSession(plugin: ForwardPlugin, connection: Connection): Promise<DownstreamSession> {
  const options: DownstreamOptions = {
    ...plugin.server,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    dataTimeoutMs: DATA_TIMEOUT_MS,
    heloName: connection.local.host || 'localhost',
    client: connection.notes[IDENTITY] as ClientIdentity | undefined,
    requireXclient: plugin.requireXclient,
    onProtocol: (direction, line) => connection.logprotocol(plugin, `${direction}: ${line}`),
  };
  const session = await DownstreamSession.open(options);
  if (connection.remote.closed) {
    session.close();
    return session;
  }
  connection.notes[SESSION] = session;
  connection.results.add(plugin, { msg: `mail server ${session.where}, client handover ${session.clientHandover}` });
  return session;
}

/** Passes the server's reply to the client: 2xx as `success`, 4xx/5xx with the server's own code and lines. */
function answer(connection: Connection, next: Next, reply: SmtpReply, success: number): void {
  if (connection.remote.closed) return;
  if (reply.code < 400) return success === constants.cont ? next() : next(success);
  next(reply.code < 500 ? constants.denysoft : constants.deny, exactReply(reply));
}

function unavailable(plugin: Plugin, connection: Connection, next: Next, err: Error): void {
  connection.logerror(plugin, err.message);
  const reply = err instanceof DownstreamError ? err.reply : undefined;
  if (reply) return answer(connection, next, reply, constants.cont);
  if (connection.remote.closed) return;
  next(constants.denysoft, HarakaDsn.create(451, 'Mail server unavailable, try again later', 4, 4));
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
