// A raw SMTP client for the tests: every reply is visible, nothing is hidden
// by a library's retries or capability handling.

import net from 'node:net';
import { SmtpReply, SmtpReplyReader } from '../../src/lib/smtp_reply';

export class SmtpTestClient {
  private readonly reader = new SmtpReplyReader();
  private readonly replies: SmtpReply[] = [];
  private readonly waiting: ((r: SmtpReply | Error) => void)[] = [];
  closed = false;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (d) => {
      for (const reply of this.reader.push(d.toString('latin1'))) {
        const w = this.waiting.shift();
        if (w) w(reply);
        else this.replies.push(reply);
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w(new Error('connection closed'));
    });
    socket.on('error', () => undefined);
  }

  /** the client's own port (the relay's client port, as XCLIENT PORT passes it on) */
  get localPort(): number | undefined {
    return this.socket.localPort;
  }

  static connect(port: number, localAddress?: string, host = '127.0.0.1'): Promise<SmtpTestClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host, localAddress });
      socket.once('connect', () => resolve(new SmtpTestClient(socket)));
      socket.once('error', reject);
    });
  }

  read(timeoutMs = 15_000): Promise<SmtpReply> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push((r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      });
    });
  }

  async command(line: string, timeoutMs?: number): Promise<SmtpReply> {
    this.socket.write(`${line}\r\n`);
    return this.read(timeoutMs);
  }

  /** Raw bytes, e.g. part of a message after a 354. */
  write(raw: string): void {
    this.socket.write(raw);
  }

  /** when the last message's final dot was handed to the kernel (benchmarks: the wait after it) */
  dataSentAt?: number;

  /** Sends a message after a 354; dot-stuffs it and returns the final reply. */
  async data(message: string, timeoutMs?: number): Promise<SmtpReply> {
    const go = await this.command('DATA');
    if (go.code !== 354) return go;
    const body = message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    this.socket.write(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, () => { this.dataSentAt = Date.now(); });
    return this.read(timeoutMs);
  }

  /** A whole transaction: EHLO (once), MAIL, RCPTs, DATA. Returns every reply. `dataTimeoutMs`: the wait for the end-of-data reply. */
  async send(
    from: string, to: string[], message: string, mailParams = '', dataTimeoutMs?: number,
  ): Promise<{ mail: SmtpReply; rcpts: SmtpReply[]; data?: SmtpReply }> {
    const mail = await this.command(`MAIL FROM:<${from}>${mailParams}`);
    const rcpts: SmtpReply[] = [];
    for (const rcpt of to) rcpts.push(await this.command(`RCPT TO:<${rcpt}>`));
    if (mail.code !== 250 || !rcpts.some((r) => r.code === 250)) return { mail, rcpts };
    return { mail, rcpts, data: await this.data(message, dataTimeoutMs) };
  }

  end(): void {
    this.socket.end('QUIT\r\n');
  }

  /** Closes the connection without QUIT (a FIN after what was written), as a client that gives up would. */
  hangUp(): void {
    this.socket.end();
  }

  /** Drops the connection without QUIT, as a crashed client would. */
  destroy(): void {
    this.socket.destroy();
  }
}

export function message(headers: Record<string, string>, body: string): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}
