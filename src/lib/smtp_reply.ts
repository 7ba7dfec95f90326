// Reassembles SMTP replies from a server's lines (RFC 5321 4.2: "250-..."
// continues, "250 ..." ends a reply).

export interface SmtpReply {
  code: number;
  /** text of each line, without the code and separator */
  lines: string[];
}

export class SmtpReplyReader {
  private pending: string[] = [];
  private buffer = '';

  /** Feeds raw socket text; returns the replies completed by it. Throws on a line that is not a reply. */
  push(chunk: string): SmtpReply[] {
    this.buffer += chunk;
    const replies: SmtpReply[] = [];
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      const m = /^([2-5]\d\d)([ -]?)(.*)$/.exec(line);
      if (!m) throw new Error(`not an SMTP reply line: ${JSON.stringify(line.slice(0, 200))}`);
      this.pending.push(m[3]);
      if (m[2] !== '-') {
        replies.push({ code: Number(m[1]), lines: this.pending });
        this.pending = [];
      }
    }
    if (this.buffer.length > 65536) throw new Error('SMTP reply line longer than 64 KiB');
    return replies;
  }
}

export function replyText(reply: SmtpReply): string {
  return reply.lines.join(' ').trim();
}

/** EHLO keywords (upper case) → their parameters. */
export function parseEhloCapabilities(reply: SmtpReply): Map<string, string> {
  const caps = new Map<string, string>();
  for (const line of reply.lines.slice(1)) {
    const [keyword, ...rest] = line.trim().split(/\s+/);
    if (keyword) caps.set(keyword.toUpperCase(), rest.join(' '));
  }
  return caps;
}

/**
 * xtext encoding (RFC 3461) for XCLIENT/XFORWARD attribute values: of the value's UTF-8 bytes (a character
 * code above 0xFF written as `+XXXX` would be read back as one byte and two letters: another name).
 */
export function xtext(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const plain = byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d;
    out += plain ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
