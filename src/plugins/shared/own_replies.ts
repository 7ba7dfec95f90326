// The replies Haraka's core gives of its own, before or without any hook of
// ours, as the server would give them (docs/transparency.md): the one module,
// beside client_input.ts, that wraps Haraka 3's connection methods for them.
//
// - respond(): a reply of Haraka's own (code and text as in connection.js) is
//   sent in Postfix's words (lib/haraka_replies, the one table); a reply given
//   as an object (the server's, or a plugin's DSN) is never touched. An empty
//   334 challenge is sent as `334 ` (Haraka adds a space).
// - respond() at end of data: commands the client pipelined after the final
//   dot are answered in turn, as RFC 2920 and Postfix do, instead of Haraka's
//   503 to each (its smuggling defence, not needed in front of the relay:
//   docs/security.md "No smuggling").
// - cmd_mail: a MAIL inside a transaction is refused (`503 5.5.1 Error: nested
//   MAIL command`), the transaction stays; MAIL/RCPT parameters after HELO go
//   to the server, which decides (Haraka refuses them with 555); white space
//   inside the address's brackets is dropped, as Postfix reads it (Haraka: 501).
// - cmd_quit: QUIT with text after it is a QUIT (Postfix ignores the text).
// - queue_ok_respond: the server's 250 at end of data is sent as it is
//   (Haraka appends its transaction id).

import { NESTED_MAIL, postfixReplyFor, trimmedAddressArgs } from '../../lib/haraka_replies';
import { toWrap } from './haraka_internals';
import type { Connection, Transaction } from './haraka';

const INSTALLED = 'esets_relay.own_replies';

/** The parts of Haraka 3's Connection (connection.js) this module relies on. */
interface HarakaInternals {
  esmtp: boolean;
  awaiting_data_reply?: boolean;
  current_line?: string;
  hello: { host?: string };
  transaction: Transaction | null;
  client: { write(data: string): unknown };
  respond(code: number | string, msg: unknown, cb?: () => void): unknown;
  cmd_mail(args: string): void;
  cmd_rcpt(args: string): void;
  cmd_quit(args: string): void;
  queue_ok_respond(retval: number, msg: unknown, params: unknown): void;
}

function internalsOf(connection: Connection): HarakaInternals | undefined {
  const c = connection as unknown as Partial<HarakaInternals>;
  const ok = typeof c.respond === 'function' && typeof c.cmd_mail === 'function' && typeof c.cmd_rcpt === 'function'
    && typeof c.cmd_quit === 'function' && typeof c.queue_ok_respond === 'function' && typeof c.esmtp === 'boolean'
    && typeof c.client?.write === 'function' && typeof c.hello === 'object';
  return ok ? c as HarakaInternals : undefined;
}

/** The server's reply to a message, as esets_forward's queue hook gave it: sent without Haraka's trailer. */
const queued = new WeakMap<object, unknown>();

/** The queue hook's 250 for this transaction, sent exactly (an exact_reply DSN). */
export function queuedReply(transaction: Transaction, reply: unknown): void {
  queued.set(transaction, reply);
}

const isObjectReply = (msg: unknown): msg is { code?: unknown; reply?: unknown } => (
  typeof msg === 'object' && msg !== null && (msg as { constructor?: { name?: string } }).constructor?.name === 'DSN'
);

/** The text lines a reply would have, blank ones included (Haraka drops those). */
function linesOf(msg: unknown): unknown[] {
  if (isObjectReply(msg)) return Array.isArray(msg.reply) ? msg.reply : [msg.reply];
  return Array.isArray(msg) ? msg : [msg];
}

/**
 * Haraka's own replies in the server's words, for this connection (connect_init).
 * Where Haraka is not the one this module knows (version 3, the internals above), it warns once and does nothing.
 */
export function answerAsServer(connection: Connection, warn: (msg: string) => void): void {
  const conn = toWrap(connection, {
    note: INSTALLED, internals: internalsOf, notDone: 'Haraka\'s own replies are sent in its words',
    needs: 'respond, cmd_mail, cmd_rcpt, cmd_quit, queue_ok_respond or esmtp',
  }, warn);
  if (!conn) return;

  const respond = conn.respond.bind(conn);
  conn.respond = (code: number | string, msg: unknown, cb?: () => void): unknown => {
    // the end-of-data reply: Haraka would drop what was pipelined after the dot and answer 503 to each command;
    // it stays buffered, and is taken after this reply (Haraka clears the flag here itself)
    if (conn.awaiting_data_reply) conn.awaiting_data_reply = false;
    if (!isObjectReply(msg)) {
      const postfix = postfixReplyFor(Number(code), msg, conn.current_line ?? '');
      if (postfix) return respond(postfix.code, postfix.lines, cb);
    }
    const replyCode = isObjectReply(msg) && typeof msg.code === 'number' ? msg.code : Number(code);
    if (replyCode !== 334 || linesOf(msg).some((l) => /\S/.test(String(l)))) return respond(code, msg, cb);
    // an empty challenge: Haraka writes "334  " (RFC 4954 and Postfix: "334 ")
    const client = conn.client;
    const write = client.write;
    client.write = (data: string): unknown => write.call(client, data === '334  \r\n' ? '334 \r\n' : data);
    try {
      return respond(code, msg, cb);
    } finally {
      client.write = write;
    }
  };

  /** Haraka refuses MAIL/RCPT parameters after HELO (555) before any hook: the server decides. */
  const withParameters = (command: (args: string) => void, args: string): void => {
    const esmtp = conn.esmtp;
    conn.esmtp = true;
    try {
      command(trimmedAddressArgs(args));
    } finally {
      conn.esmtp = esmtp;
    }
  };
  const cmdMail = conn.cmd_mail.bind(conn);
  conn.cmd_mail = (args: string): void => {
    // Haraka would start a new transaction (its reset sends RSET to the server): Postfix refuses, the first stays
    if (conn.hello.host && conn.transaction?.mail_from) {
      conn.respond(NESTED_MAIL.code, [...NESTED_MAIL.lines]);
      return;
    }
    withParameters(cmdMail, args);
  };
  const cmdRcpt = conn.cmd_rcpt.bind(conn);
  conn.cmd_rcpt = (args: string): void => withParameters(cmdRcpt, args);
  const cmdQuit = conn.cmd_quit.bind(conn);
  conn.cmd_quit = (): void => cmdQuit('');

  const queueOk = conn.queue_ok_respond.bind(conn);
  conn.queue_ok_respond = (retval: number, msg: unknown, params: unknown): void => {
    const exact = conn.transaction ? queued.get(conn.transaction) : undefined;
    queueOk(retval, msg, exact ?? params);
  };
}
