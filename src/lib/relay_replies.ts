// Every reply the relay composes itself, in one table: the code, the RFC 3463
// enhanced code and a text that tells the sender what to do (Postfix's style:
// short, "try again later", "send it in a separate transaction"). Each reply
// ends with the trace id, `(trace ID)`, which finds the message's log lines.
// The server's own replies pass exactly and Haraka's core replies are in
// lib/haraka_replies: neither is here.
//
// A reply never holds what is the relay's business: no scanner or server
// address, port, socket path, errno or library message; those are in the log
// line of the same trace id. The only variable text is a detail about the
// sender's own message or command (the virus names a scanner found, the
// structure that made the message unreadable, the refused verb or parameter).

/** An RFC 3463 enhanced status code: class.subject.detail */
export interface EnhancedCode {
  cls: 2 | 4 | 5;
  subject: number;
  detail: number;
}

export function enhancedCode(e: EnhancedCode): string {
  return `${e.cls}.${e.subject}.${e.detail}`;
}

interface Entry {
  code: number;
  enhanced: EnhancedCode;
  /** the text; with a detail (what the sender's own message or command held) for the kinds that name one */
  text: string | ((detail: string) => string);
}

const e = (cls: 2 | 4 | 5, subject: number, detail: number): EnhancedCode => ({ cls, subject, detail });
const REJECTED = e(5, 7, 1);
const DEFERRED = e(4, 7, 1);

const TABLE = {
  // the policy (esets.cfg's action_* options): reject 550 5.7.1, defer 451 4.7.1, discard 250
  reject_virus: {
    code: 550, enhanced: REJECTED, text: (d: string) => `Message rejected: virus found (${d}), remove it before sending again`,
  },
  reject_banned: {
    code: 550, enhanced: REJECTED, text: (d: string) => `Message rejected: banned attachment (${d}), remove it before sending again`,
  },
  reject_not_scanned: {
    code: 550, enhanced: REJECTED, text: 'Message rejected: it could not be scanned for viruses, contact the postmaster',
  },
  reject_spam: { code: 550, enhanced: REJECTED, text: 'Message rejected as spam, contact the postmaster if it is not' },
  reject_spam_not_scanned: {
    code: 550, enhanced: REJECTED, text: 'Message rejected: it could not be checked for spam, contact the postmaster',
  },
  reject_by_policy: { code: 550, enhanced: REJECTED, text: 'Message rejected by the mail policy, contact the postmaster' },
  defer_virus: { code: 451, enhanced: DEFERRED, text: (d: string) => `Message deferred: virus found (${d}), try again later` },
  defer_banned: { code: 451, enhanced: DEFERRED, text: (d: string) => `Message deferred: banned attachment (${d}), try again later` },
  defer_not_scanned: { code: 451, enhanced: DEFERRED, text: 'Message deferred: it could not be scanned for viruses, try again later' },
  defer_spam: { code: 451, enhanced: DEFERRED, text: 'Message deferred as spam, try again later' },
  defer_spam_not_scanned: { code: 451, enhanced: DEFERRED, text: 'Message deferred: it could not be checked for spam, try again later' },
  defer_by_policy: { code: 451, enhanced: DEFERRED, text: 'Message deferred by the mail policy, try again later' },
  /** discard: the sender is told the message was taken (esets_smtp's discard) */
  discarded: { code: 250, enhanced: e(2, 0, 0), text: 'Message accepted' },
  // the message itself
  malformed: {
    code: 550, enhanced: e(5, 6, 0), text: (d: string) => `Message refused: malformed message (${d}), correct it before sending again`,
  },
  too_big: { code: 552, enhanced: e(5, 3, 4), text: 'Message size exceeds fixed maximum message size' },
  spool_full: { code: 452, enhanced: e(4, 3, 1), text: 'Insufficient system storage, try again later' },
  scan_failed: { code: 451, enhanced: e(4, 3, 0), text: 'Temporary failure while scanning, try again later' },
  /** av_quarantine_enabled and the copy could not be kept: never refused or dropped without it */
  quarantine_failed: { code: 451, enhanced: e(4, 3, 0), text: 'Message deferred: it could not be quarantined, try again later' },
  // the session
  too_many_connections: { code: 421, enhanced: e(4, 7, 0), text: 'Too many connections, try again later' },
  proxy_refused: { code: 421, enhanced: e(4, 7, 0), text: 'PROXY not allowed from this address, connect without it' },
  shutting_down: { code: 421, enhanced: e(4, 3, 2), text: 'Service shutting down, try again later' },
  session_too_long: { code: 421, enhanced: e(4, 4, 2), text: 'Session too long, closing connection, connect again to go on' },
  client_not_reading: { code: 421, enhanced: e(4, 4, 2), text: 'Client not reading, closing connection' },
  client_too_slow: { code: 421, enhanced: e(4, 4, 2), text: 'Client too slow, closing connection' },
  command_not_supported: { code: 502, enhanced: e(5, 5, 1), text: (d: string) => `${d} not supported` },
  parameter_not_supported: { code: 555, enhanced: e(5, 5, 4), text: (d: string) => `${d} not supported, send the message without it` },
  // addresses (esets_user_config)
  recipient_routing: {
    code: 550, enhanced: e(5, 1, 3), text: 'Recipient address routing (%, !, quoted @) not accepted here, use a plain address',
  },
  sender_routing: {
    code: 550, enhanced: e(5, 1, 7), text: 'Sender address routing (%, !, quoted @) not accepted here, use a plain address',
  },
  another_policy: { code: 451, enhanced: e(4, 5, 3), text: 'Recipient has another policy, send it in a separate transaction' },
  // the mail server behind the relay
  server_unreachable: { code: 421, enhanced: e(4, 4, 1), text: 'Mail server unavailable, try again later' },
  server_refuses_relay: { code: 421, enhanced: e(4, 3, 0), text: 'Mail server does not accept this relay, try again later' },
  server_gone: { code: 451, enhanced: e(4, 4, 4), text: 'Mail server unavailable, try again later' },
  answer_lost: {
    code: 421, enhanced: e(4, 4, 2), text: "Lost the mail server's answer, the message may have been delivered, try again later",
  },
  auth_again: { code: 421, enhanced: e(4, 7, 0), text: 'Session reset, authenticate again' },
} satisfies Record<string, Entry>;

export type RelayReplyKind = keyof typeof TABLE;

/** The kinds whose text names a detail of the sender's own message or command. */
export type DetailedReplyKind = { [K in RelayReplyKind]: (typeof TABLE)[K]['text'] extends string ? never : K }[RelayReplyKind];
export type PlainReplyKind = Exclude<RelayReplyKind, DetailedReplyKind>;

/** A reply kind as a value between plugins: the kind, and the detail for the kinds that name one. */
export type ReplyRef = { kind: PlainReplyKind } | { kind: DetailedReplyKind; detail: string };

export const RELAY_REPLY_KINDS = Object.keys(TABLE) as RelayReplyKind[];

/** A reply as the client reads it: the code, and the one line (enhanced code, text, trace). */
export interface RelayReply {
  kind: RelayReplyKind;
  code: number;
  enhanced: EnhancedCode;
  /** the text, without the enhanced code and the trace */
  text: string;
  /** the line after the code: `ENHANCED TEXT (trace ID)` */
  line: string;
}

/** Longest detail kept (a name list, a structure's description). */
const DETAIL_MAX = 200;

/** A detail as it may stand in a reply: one line of printable ASCII (SMTP replies are ASCII), bounded. */
export function replyDetail(detail: string): string {
  const one = detail.replace(/[^\x20-\x7e]+/g, ' ').replace(/\s+/g, ' ').trim();
  return one.length > DETAIL_MAX ? `${one.slice(0, DETAIL_MAX - 3)}...` : one;
}

/** The table's code, enhanced code and text for a kind (the log says the same words). */
export function replyEntry(ref: ReplyRef): { code: number; enhanced: EnhancedCode; text: string } {
  const entry: Entry = TABLE[ref.kind];
  const text = typeof entry.text === 'string' ? entry.text : entry.text('detail' in ref ? replyDetail(ref.detail) : '');
  return { code: entry.code, enhanced: entry.enhanced, text };
}

/** The reply for a kind, with the trace id appended in the one fixed form `(trace ID)`. */
export function relayReply(ref: ReplyRef, traceId: string): RelayReply {
  const { code, enhanced, text } = replyEntry(ref);
  return { kind: ref.kind, code, enhanced, text, line: `${enhancedCode(enhanced)} ${text} (trace ${replyDetail(traceId)})` };
}

/** The whole reply line, `CODE ENHANCED TEXT (trace ID)` (as the client reads it, without CRLF). */
export function replyLine(reply: RelayReply): string {
  return `${reply.code} ${reply.line}`;
}
