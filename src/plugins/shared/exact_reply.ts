// A reply Haraka sends exactly as given: connection.respond() takes the code
// and the lines of any object whose class is named DSN (Haraka 3.3
// connection.js), so the mail server's own code and every line of its reply
// reach the client unchanged (haraka-dsn's DSN would rebuild the text).

import type { SmtpReply } from '../../lib/smtp_reply';

export class DSN {
  readonly code: number;
  readonly reply: string[];

  constructor(reply: SmtpReply) {
    this.code = reply.code;
    // Haraka drops blank lines (and sends "334 " for a 334 without text); a reply without text keeps its code as text
    this.reply = reply.lines.some((l) => /\S/.test(l)) || reply.code === 334 ? [...reply.lines] : [String(reply.code)];
  }

  /** The text, as haraka-dsn's DSN gives it: Haraka logs the reply of a hook with it (else msg="[object Object]"). */
  toString(): string {
    return this.reply.join('\n');
  }
}

export function exactReply(reply: SmtpReply): DSN {
  return new DSN(reply);
}
