// Haraka's own replies, which its core sends before or without any hook of
// ours (connection.js of Haraka 3.3: cmd_data, cmd_rcpt, cmd_mail,
// cmd_helo, cmd_ehlo, data_respond, rset_respond, noop_respond,
// unrecognized_command_respond),
// and the words Postfix smtpd 3.7 (the server most users put behind the relay)
// answers the same command with. The relay passes the server's replies on as
// they are; these are the replies the server never gave, so the client gets
// them as the server would have worded them (docs/transparency.md).

import type { SmtpReply } from './smtp_reply';

interface HarakaReply {
  /** the code Haraka answers with */
  code: number;
  /** Haraka's text, exactly */
  text: string;
  /** the command's verb, upper case, where Haraka gives the same text to several ('' for an empty line) */
  verb?: string;
  /** Postfix's reply: code and its one line (enhanced code and text) */
  postfix: SmtpReply;
}

const reply = (code: number, line: string): SmtpReply => ({ code, lines: [line] });

/** Postfix smtpd's words for a MAIL inside a transaction (the first transaction stays). */
export const NESTED_MAIL: SmtpReply = reply(503, '5.5.1 Error: nested MAIL command');

/** The one table: Haraka's reply (code, text, verb) → Postfix's. */
export const HARAKA_REPLIES: readonly HarakaReply[] = [
  // DATA in a transaction with no recipient: Postfix does not tell a pipelined DATA apart
  { code: 503, text: 'RCPT required first', postfix: reply(554, '5.5.1 Error: no valid recipients') },
  { code: 554, text: 'No valid recipients', postfix: reply(554, '5.5.1 Error: no valid recipients') },
  // DATA outside a transaction
  { code: 503, text: 'MAIL required first', postfix: reply(503, '5.5.1 Error: need RCPT command') },
  { code: 503, text: 'Use MAIL before RCPT', postfix: reply(503, '5.5.1 Error: need MAIL command') },
  // Postfix's words with smtpd_helo_required = yes (without it, Postfix takes MAIL before HELO)
  { code: 503, text: 'Use EHLO/HELO before MAIL', postfix: reply(503, '5.5.1 Error: send HELO/EHLO first') },
  { code: 500, text: 'Unrecognized command', verb: '', postfix: reply(500, '5.5.2 Error: bad syntax') },
  { code: 500, text: 'Unrecognized command', postfix: reply(500, '5.5.2 Error: command not recognized') },
  { code: 354, text: 'go ahead, make my day', postfix: reply(354, 'End data with <CR><LF>.<CR><LF>') },
  // RSET, and NOOP where no plugin answers it
  { code: 250, text: 'OK', postfix: reply(250, '2.0.0 Ok') },
  // Postfix gives these two no enhanced code
  { code: 501, text: 'HELO requires domain/address - see RFC-2821 4.1.1.1', postfix: reply(501, 'Syntax: HELO hostname') },
  { code: 501, text: 'EHLO requires domain/address - see RFC-2821 4.1.1.1', postfix: reply(501, 'Syntax: EHLO hostname') },
  { code: 501, text: 'Syntax error', verb: 'DATA', postfix: reply(501, '5.5.4 Syntax: DATA') },
  { code: 501, text: 'Syntax error', verb: 'RSET', postfix: reply(501, '5.5.4 Syntax: RSET') },
];

/** The verb of a command line, upper case ('' for an empty line). */
export function verbOf(line: string): string {
  return (/^\S*/.exec(line)?.[0] ?? '').toUpperCase();
}

/**
 * Postfix's reply for one of Haraka's own (its code and its text as one
 * string, or as one line), for the command line it answers; undefined for any
 * other reply, which is sent as it is.
 */
export function postfixReplyFor(code: number, msg: unknown, commandLine: string): SmtpReply | undefined {
  const text = typeof msg === 'string' ? msg : Array.isArray(msg) && msg.length === 1 && typeof msg[0] === 'string' ? msg[0] : undefined;
  if (text === undefined) return undefined;
  const verb = verbOf(commandLine);
  const entry = HARAKA_REPLIES.find((r) => r.code === code && r.text === text && (r.verb === undefined || r.verb === verb));
  return entry && { code: entry.postfix.code, lines: [...entry.postfix.lines] };
}

/**
 * `MAIL FROM:< a@b >` / `RCPT TO:<a@b >` with white space inside the brackets,
 * which Postfix reads as `<a@b>` and Haraka's address parser refuses (501): the
 * line with that space removed. Any other line is returned as it is, and so is
 * an address with a quoted part (a `>` or a space inside quotes is the address's
 * own: `<"us er >"@x>` is another mailbox than `<"us er>"@x>`).
 */
export function trimmedAddressArgs(args: string): string {
  return args.replace(/^((?:FROM|TO):[ \t]*<)[ \t]*([^<>"]*?)[ \t]*>/i, '$1$2>');
}
