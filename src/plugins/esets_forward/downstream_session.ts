// One SMTP client connection to the mail server, mirroring one client session.
// Commands are sent one at a time; each returns the server's reply.

import net from 'node:net';
import { Transform, TransformCallback } from 'node:stream';
import {
  SmtpReply, SmtpReplyReader, parseEhloCapabilities, replyText, xtext,
} from '../../lib/smtp_reply';
import { Coalescer } from '../shared/coalescer';
import { connectWithin } from '../shared/connect';
import type { MessageStream } from '../shared/haraka';

export interface ClientIdentity {
  addr: string;
  name?: string;
  helo?: string;
  proto: 'SMTP' | 'ESMTP';
}

export interface DownstreamOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  dataTimeoutMs: number;
  /** our EHLO name */
  heloName: string;
  /** passed with XCLIENT (or XFORWARD) when the server offers it */
  client?: ClientIdentity;
  /** called with each line sent (C) and received (S), for protocol logging */
  onProtocol?: (direction: 'C' | 'S', line: string) => void;
}

/** The server refused with a reply to pass on (4xx/5xx), or the link failed (reply undefined). */
export class DownstreamError extends Error {
  readonly reply?: SmtpReply;

  constructor(message: string, reply?: SmtpReply) {
    super(message);
    if (reply && reply.code >= 400) this.reply = reply;
  }
}

export interface HeldMessage {
  /** resolves when the whole message (without the dot) is handed to the socket */
  written: Promise<void>;
  finish(): Promise<SmtpReply>;
  abort(): void;
}

interface Waiter {
  resolve(reply: SmtpReply): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class DownstreamSession {
  capabilities = new Map<string, string>();
  /** a MAIL FROM was accepted and no DATA/RSET has ended it yet */
  inTransaction = false;
  /** what the identity handover did: 'XCLIENT', 'XFORWARD' or 'none' */
  clientHandover: 'XCLIENT' | 'XFORWARD' | 'none' = 'none';

  private readonly reader = new SmtpReplyReader();
  private readonly early: SmtpReply[] = [];
  private readonly waiters: Waiter[] = [];
  private failure?: Error;

  private constructor(private readonly socket: net.Socket, private readonly opts: DownstreamOptions) {
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new DownstreamError(`mail server ${this.where}: ${err.message}`)));
    socket.on('close', () => this.fail(new DownstreamError(`mail server ${this.where} closed the connection`)));
  }

  get where(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }

  get alive(): boolean {
    return !this.failure && !this.socket.destroyed;
  }

  /** Connects, reads the greeting, says EHLO and hands over the client's identity. */
  static async open(opts: DownstreamOptions): Promise<DownstreamSession> {
    const socket = await connect(opts);
    const session = new DownstreamSession(socket, opts);
    try {
      const greeting = await session.expect(opts.commandTimeoutMs);
      if (greeting.code !== 220) throw new DownstreamError(`mail server greeting: ${greeting.code} ${replyText(greeting)}`, greeting);
      await session.ehlo();
      await session.handOverClient();
      return session;
    } catch (err) {
      session.close();
      throw err;
    }
  }

  async command(line: string, timeoutMs = this.opts.commandTimeoutMs): Promise<SmtpReply> {
    if (this.failure) throw this.failure;
    this.opts.onProtocol?.('C', line);
    this.socket.write(`${line}\r\n`);
    return this.expect(timeoutMs);
  }

  /** DATA, the message (dot-stuffed, with the final dot), and the server's final reply. */
  async sendMessage(stream: MessageStream): Promise<SmtpReply> {
    const go = await this.command('DATA');
    if (go.code >= 400) return go;
    if (go.code !== 354) throw new DownstreamError(`mail server answered DATA with ${go.code} ${replyText(go)}`);
    const final = this.expect(this.opts.dataTimeoutMs);
    const batched = new Coalescer();
    batched.pipe(this.socket, { end: false });
    stream.pipe(batched, { dot_stuffed: false, ending_dot: true });
    return final;
  }

  /**
   * DATA and the message without its final dot. `finish` sends the dot (once the
   * message is written) and returns the server's reply; `abort` drops the
   * connection, so the server discards the message. The whole exchange has
   * `dataTimeoutMs`: a server that stops reading is dropped, not waited for.
   */
  async beginMessage(stream: MessageStream): Promise<HeldMessage | SmtpReply> {
    const go = await this.command('DATA');
    if (go.code >= 400) return go;
    if (go.code !== 354) throw new DownstreamError(`mail server answered DATA with ${go.code} ${replyText(go)}`);
    const timer = setTimeout(() => this.destroy(`mail server ${this.where} did not take the message within ${Math.round(this.opts.dataTimeoutMs / 1000)} s`), this.opts.dataTimeoutMs);
    const withoutDot = new WithoutFinalDot();
    const batched = new Coalescer();
    withoutDot.pipe(batched).pipe(this.socket, { end: false });
    const written = new Promise<void>((resolve, reject) => {
      const lost = (): void => {
        // lets the message stream's pipe end, so it can be read again
        withoutDot.destroy();
        batched.destroy();
        reject(new DownstreamError(`mail server ${this.where} closed the connection`));
      };
      this.socket.once('close', lost);
      batched.once('end', () => {
        this.socket.removeListener('close', lost);
        resolve();
      });
    });
    written.catch(() => clearTimeout(timer));
    // ending_dot: the header lines Haraka rebuilt are dot-stuffed too; WithoutFinalDot keeps the dot back
    stream.pipe(withoutDot, { dot_stuffed: false, ending_dot: true });
    return {
      written,
      finish: async () => {
        await written;
        // a reply before the dot (none is due) means the exchange is out of step: drop it
        if (this.early.length) throw this.destroy(`mail server ${this.where} answered before the end of the message`);
        this.opts.onProtocol?.('C', '.');
        const final = this.expect(this.opts.dataTimeoutMs);
        this.socket.write('.\r\n');
        return final.finally(() => clearTimeout(timer));
      },
      abort: () => {
        clearTimeout(timer);
        this.destroy('message withdrawn before its final dot');
        withoutDot.destroy();
        batched.destroy();
      },
    };
  }

  /** Drops the connection at once, whatever it was doing; returns the error its waiters get. */
  destroy(why = `session with ${this.where} dropped`): DownstreamError {
    const err = new DownstreamError(why);
    this.fail(err);
    this.socket.destroy();
    return err;
  }

  /** Ends the session politely; the socket is destroyed if the server does not answer soon. */
  close(): void {
    if (this.alive) {
      this.socket.end('QUIT\r\n');
      setTimeout(() => this.socket.destroy(), 1000).unref();
    } else {
      this.socket.destroy();
    }
  }

  private async ehlo(): Promise<void> {
    const ehlo = await this.command(`EHLO ${this.opts.heloName}`);
    if (ehlo.code === 250) {
      this.capabilities = parseEhloCapabilities(ehlo);
      return;
    }
    const helo = await this.command(`HELO ${this.opts.heloName}`);
    if (helo.code !== 250) throw new DownstreamError(`mail server refused HELO: ${helo.code} ${replyText(helo)}`, helo);
    this.capabilities = new Map();
  }

  /**
   * XCLIENT makes the server judge the real client (its relay rules, its
   * logs); XFORWARD only informs its logs. See README "Relay rule".
   */
  private async handOverClient(): Promise<void> {
    const client = this.opts.client;
    if (!client) return;
    const attributes: Record<string, string | undefined> = {
      ADDR: client.addr,
      NAME: client.name || '[UNAVAILABLE]',
      HELO: client.helo,
      PROTO: client.proto,
    };
    for (const verb of ['XCLIENT', 'XFORWARD'] as const) {
      if (!this.capabilities.has(verb)) continue;
      const offered = new Set(this.capabilities.get(verb)!.toUpperCase().split(/\s+/));
      const args = Object.entries(attributes)
        .filter(([k, v]) => v !== undefined && offered.has(k))
        .map(([k, v]) => `${k}=${xtext(v!)}`);
      if (!args.length) continue;
      const reply = await this.command(`${verb} ${args.join(' ')}`);
      if (reply.code >= 300) throw new DownstreamError(`mail server refused ${verb}: ${reply.code} ${replyText(reply)}`, reply);
      this.clientHandover = verb;
      // XCLIENT starts the session over (Postfix answers 220, others 250): EHLO again
      if (verb === 'XCLIENT') await this.ehlo();
      return;
    }
  }

  private expect(timeoutMs: number): Promise<SmtpReply> {
    const ready = this.early.shift();
    if (ready) return Promise.resolve(ready);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new DownstreamError(`mail server ${this.where} did not answer within ${Math.round(timeoutMs / 1000)} s`));
        this.socket.destroy();
      }, timeoutMs);
      this.waiters.push({ resolve, reject, timer });
    });
  }

  private onData(chunk: string): void {
    let replies: SmtpReply[];
    try {
      replies = this.reader.push(chunk);
    } catch (err) {
      this.fail(new DownstreamError(`mail server ${this.where}: ${(err as Error).message}`));
      this.socket.destroy();
      return;
    }
    for (const reply of replies) {
      for (const line of reply.lines) this.opts.onProtocol?.('S', `${reply.code} ${line}`);
      const waiter = this.waiters.shift();
      if (!waiter) {
        this.early.push(reply);
        continue;
      }
      clearTimeout(waiter.timer);
      waiter.resolve(reply);
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.inTransaction = false;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(err);
    }
  }
}

function connect(opts: DownstreamOptions): Promise<net.Socket> {
  return connectWithin(net.connect({ host: opts.host, port: opts.port }), opts.connectTimeoutMs).catch((err: Error) => {
    throw new DownstreamError(`mail server ${opts.host}:${opts.port}: ${err.message}`);
  });
}

/**
 * Passes a dot-stuffed message through except its final ".\r\n", which it keeps
 * back: each chunk goes on one chunk late, and the message stream's last chunk
 * (its ending dot) loses those 3 bytes.
 */
class WithoutFinalDot extends Transform {
  private last?: Buffer;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.last) this.push(this.last);
    this.last = chunk;
    done();
  }

  override _flush(done: TransformCallback): void {
    const last = this.last;
    if (last) {
      const ending = last.length >= 3 && last.subarray(last.length - 3).toString('latin1') === '.\r\n';
      if (!ending) this.push(last);
      else if (last.length > 3) this.push(last.subarray(0, last.length - 3));
    }
    done();
  }
}
