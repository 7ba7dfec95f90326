// What the client is told in reply to EHLO: the mail server's own reply,
// minus the extensions the relay never offers (esets_smtp hides STARTTLS; the
// relay must see every message in clear and whole, and the client's identity
// is the relay's to hand over).

import type { SmtpReply } from './smtp_reply';

/** Never advertised to the client, whatever the server offers; their verbs are refused. */
export const HIDDEN_EXTENSIONS: ReadonlySet<string> = new Set(['STARTTLS', 'CHUNKING', 'BINARYMIME', 'XCLIENT', 'XFORWARD']);

/** The server's EHLO reply lines for the client: its first line, then its extensions in order, the hidden ones left out. */
export function clientEhloLines(serverEhlo: SmtpReply): string[] {
  const [first, ...extensions] = serverEhlo.lines;
  return [first ?? '', ...extensions.filter((line) => !HIDDEN_EXTENSIONS.has(line.trim().split(/[\s=]/)[0].toUpperCase()))];
}
