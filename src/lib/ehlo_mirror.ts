// What the client is told in reply to EHLO: the mail server's own reply,
// minus the extensions the relay never offers (esets_smtp hides STARTTLS; the
// relay must see every message in clear and whole, and the client's identity
// is the relay's to hand over).

import type { SmtpReply } from './smtp_reply';

/** Never advertised to the client, whatever the server offers; their verbs are refused. */
export const HIDDEN_EXTENSIONS: ReadonlySet<string> = new Set(['STARTTLS', 'CHUNKING', 'BINARYMIME', 'XCLIENT', 'XFORWARD']);

/** The verbs of the hidden extensions: never passed to the server, whatever state the session is in. */
export const HIDDEN_VERBS: ReadonlySet<string> = new Set(['STARTTLS', 'BDAT', 'XCLIENT', 'XFORWARD']);

/** Verbs a client may pipeline or send early (RFC 5321, 2920): any other pipelined line may be an AUTH answer. */
const PLAIN_VERBS = new Set([
  'HELO', 'EHLO', 'MAIL', 'RCPT', 'DATA', 'RSET', 'NOOP', 'QUIT', 'VRFY', 'EXPN', 'HELP', 'ETRN', 'STARTTLS', 'BDAT',
]);

/** The server's EHLO reply lines for the client: its first line, then its extensions in order, the hidden ones left out. */
export function clientEhloLines(serverEhlo: SmtpReply): string[] {
  const [first, ...extensions] = serverEhlo.lines;
  return [first ?? '', ...extensions.filter((line) => !HIDDEN_EXTENSIONS.has(line.trim().split(/[\s=]/)[0].toUpperCase()))];
}

/** A MAIL parameter that only a hidden extension allows (BODY=BINARYMIME), or undefined. */
export function hiddenParameter(params: Record<string, string | null>): string | undefined {
  return (params.BODY ?? '').toUpperCase() === 'BINARYMIME' ? 'BODY=BINARYMIME' : undefined;
}

/**
 * A client command line as the protocol log may show it: never an AUTH
 * credential (the initial response, or a line of the exchange that follows).
 */
export function loggableCommand(line: string, authenticating: boolean): string {
  if (authenticating) return '****';
  const m = /^(AUTH\s+\S+)(\s+\S.*)?$/i.exec(line);
  if (m) return m[2] ? `${m[1]} ****` : m[1];
  return line;
}

/** A line Haraka logs as pipelined or early (debug level): shown only when it is a plain command. */
export function loggablePipelined(line: string): string {
  const verb = line.trim().split(/\s+/)[0]?.toUpperCase() ?? '';
  if (verb === 'AUTH') return loggableCommand(line.trim(), false);
  return PLAIN_VERBS.has(verb) ? line : '****';
}
