// One SMTP client connection to the mail server, mirroring one client session.
// Commands are sent one at a time; each returns the server's reply.

import net from 'node:net';
import { DotStuffer } from '../lib/smtp_data';
import {
  SmtpReply, SmtpReplyReader, parseEhloCapabilities, replyText, xtext,
} from '../lib/smtp_reply';
import { remainingMs } from '../lib/timeout_budget';
import { trackAnswer } from './shutdown';
import { connectWithin } from './connect';
import { trackServerSession } from './process_metrics';

/** the message goes to the server in writes of about this size */
const BATCH_BYTES = 64 * 1024;

export interface ClientIdentity {
  addr: string;
  /** a forward-confirmed host name; undefined: [UNAVAILABLE] */
  name?: string;
  /** the PTR name when it was not confirmed (XCLIENT REVERSE_NAME) */
  reverseName?: string;
  /** the client's source port (XCLIENT/XFORWARD PORT) */
  port?: number;
  /** the address and port the client connected to: the relay's, or behind PROXY the balancer's (XCLIENT DESTADDR/DESTPORT) */
  destAddr?: string;
  destPort?: number;
  /** the client's HELO/EHLO name, once it said one */
  helo?: string;
  proto?: 'SMTP' | 'ESMTP';
}

export interface DownstreamOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** our EHLO name, before XCLIENT */
  heloName: string;
  /** who the server must judge: handed over with XCLIENT */
  client?: ClientIdentity;
  /**
   * the server trusts the relay's own address: without XCLIENT every client
   * would look like the relay (an open relay), so a server that does not take
   * XCLIENT fails the session (docs/security.md)
   */
  requireXclient: boolean;
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

/**
 * The server does not take XCLIENT from the relay while it trusts the relay's
 * address. `fix`: what the operator must fix (the relay's EHLO name, XCLIENT
 * authorization, or a server that cannot read the client's IPv6 address).
 */
export class HandoverRefused extends DownstreamError {
  constructor(message: string, readonly fix: 'ehlo' | 'xclient' | 'ipv6' = 'xclient') {
    super(message);
  }
}

/**
 * The whole message and its final dot were sent, and the server's answer was
 * lost (no answer in time, or the connection dropped): the server may have
 * taken the message.
 */
export class OutcomeUnknown extends DownstreamError {}

interface Waiter {
  resolve(reply: SmtpReply): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class DownstreamSession {
  capabilities = new Map<string, string>();
  /** a MAIL FROM was accepted and no DATA/RSET has ended it yet */
  inTransaction = false;
  /** what the identity handover did: 'XCLIENT', or 'XFORWARD' before each transaction, or 'none' */
  clientHandover: 'XCLIENT' | 'XFORWARD' | 'none' = 'none';
  /** the greeting the client gets: the server's, after XCLIENT when it sent one */
  greeting: SmtpReply = { code: 220, lines: [] };

  private quitSent = false;
  /** where DATA is: the message being written (no dot yet), or the dot sent and its answer awaited */
  private phase: 'commands' | 'message' | 'answer' = 'commands';
  /** close() came while the answer to the message was awaited: close once it is in (or lost) */
  private closeAfterAnswer = false;
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

  /** Connects, reads the greeting, says EHLO as the relay and hands over the client's identity (XCLIENT). */
  static async open(opts: DownstreamOptions): Promise<DownstreamSession> {
    const socket = await connect(opts);
    const session = new DownstreamSession(socket, opts);
    try {
      const greeting = await session.expect(opts.commandTimeoutMs);
      if (greeting.code !== 220) throw new DownstreamError(`mail server greeting: ${greeting.code} ${replyText(greeting)}`, greeting);
      session.greeting = greeting;
      const ehlo = await session.hello('EHLO', opts.heloName);
      // the relay's own name refused: no client can get through; the operator must fix it, not the client
      if (ehlo.code !== 250) {
        throw new HandoverRefused(
          `mail server ${session.where} refused the relay's EHLO ${opts.heloName}: ${ehlo.code} ${replyText(ehlo)}`, 'ehlo',
        );
      }
      await session.handOverClient();
      return session;
    } catch (err) {
      session.close();
      throw err;
    }
  }

  /** The client's HELO or EHLO, with the client's name (after XCLIENT the server judges it). */
  async hello(verb: 'HELO' | 'EHLO', name: string): Promise<SmtpReply> {
    const reply = await this.command(`${verb} ${name}`);
    if (reply.code === 250) this.capabilities = verb === 'EHLO' ? parseEhloCapabilities(reply) : new Map();
    return reply;
  }

  /** With XFORWARD as the handover: the client's attributes, before each MAIL (the server forgets them after each transaction). */
  async forwardClient(): Promise<void> {
    if (this.clientHandover !== 'XFORWARD') return;
    const args = this.attributes('XFORWARD');
    if (!args.length) return;
    const reply = await this.command(`XFORWARD ${args.join(' ')}`);
    if (reply.code >= 300) throw new DownstreamError(`mail server refused XFORWARD: ${reply.code} ${replyText(reply)}`, reply);
  }

  /** `logAs`: what the protocol log shows instead of the line (AUTH: never the credentials) */
  async command(line: string, timeoutMs = this.opts.commandTimeoutMs, logAs = line): Promise<SmtpReply> {
    if (this.failure) throw this.failure;
    if (line === 'QUIT') this.quitSent = true;
    this.opts.onProtocol?.('C', logAs);
    this.socket.write(`${line}\r\n`);
    return this.expect(timeoutMs);
  }

  /**
   * DATA, then the message: `parts` are its bytes (not dot-stuffed), which the
   * relay stuffs here, and the final dot; returns the server's final reply, due
   * by `deadline` (epoch ms). Its loss after the dot is an OutcomeUnknown.
   */
  async sendMessage(parts: AsyncIterable<Buffer>, deadline: number): Promise<SmtpReply> {
    const go = await this.command('DATA', Math.min(this.opts.commandTimeoutMs, remainingMs(deadline)));
    if (go.code >= 400) return go;
    if (go.code !== 354) throw this.destroy(`mail server answered DATA with ${go.code} ${replyText(go)}`);
    this.phase = 'message';
    const final = this.expect(remainingMs(deadline));
    final.catch(() => undefined);
    const stuffer = new DotStuffer();
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      if (!batchBytes) return;
      const chunk = Buffer.concat(batch, batchBytes);
      batch = [];
      batchBytes = 0;
      if (!this.socket.write(chunk)) await this.drained();
    };
    try {
      for await (const part of parts) {
        if (this.failure) break;
        const stuffed = stuffer.stuff(part);
        batch.push(stuffed);
        batchBytes += stuffed.length;
        if (batchBytes >= BATCH_BYTES) await flush();
      }
    } catch (err) {
      // the message could not be read: the server must not take a partial one
      throw this.destroy(`message not sent: ${(err as Error).message}`);
    }
    // the link failed (or the client left, see close()) before the dot: the server cannot have taken the message
    if (this.failure) throw this.failure;
    const ending = stuffer.end();
    batch.push(ending);
    batchBytes += ending.length;
    await flush();
    this.phase = 'answer';
    trackAnswer(final);
    this.opts.onProtocol?.('C', '.');
    return final
      .catch((err: Error) => {
        throw new OutcomeUnknown(`${err.message} after the message was sent: it may have been delivered`);
      })
      .finally(() => {
        this.phase = 'commands';
        if (this.closeAfterAnswer) this.close();
      });
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Drops the connection at once, whatever it was doing; returns the error its waiters get. */
  destroy(why = `session with ${this.where} dropped`): DownstreamError {
    const err = new DownstreamError(why);
    this.fail(err);
    this.socket.destroy();
    return err;
  }

  /**
   * Ends the session politely; the socket is destroyed if the server does not
   * answer soon. Mid-message (no dot yet) it is cut, so the server drops the
   * message; after the dot it waits for the server's answer (bounded by the
   * message's deadline), so what the server did is known.
   */
  close(): void {
    if (this.phase === 'message') {
      this.destroy('the client left while its message was being sent');
      return;
    }
    if (this.phase === 'answer' && this.alive) {
      this.closeAfterAnswer = true;
      return;
    }
    if (this.alive && !this.quitSent) {
      this.socket.end('QUIT\r\n');
      setTimeout(() => this.socket.destroy(), 1000).unref();
    } else {
      this.socket.destroy();
    }
  }

  /**
   * XCLIENT makes the server judge the real client (its relay rules, its
   * logs). Without it a server that trusts the relay would see every client
   * as the relay; so then the session fails, unless the operator says the
   * server does not trust the relay (XFORWARD then informs its logs).
   */
  private async handOverClient(): Promise<void> {
    if (!this.opts.client) return;
    if (this.capabilities.has('XCLIENT')) {
      const reply = await this.command(`XCLIENT ${this.attributes('XCLIENT').join(' ')}`);
      // XCLIENT starts the session over and its reply is the new session's greeting: 220 (Postfix; others
      // say 250), or 554/421 when the server refuses the client itself; anything else refuses XCLIENT
      if (reply.code < 300 || reply.code === 554 || reply.code === 421) {
        this.clientHandover = 'XCLIENT';
        if (reply.code !== 250) this.greeting = reply;
        return;
      }
      // Postfix with inet_protocols = ipv4 cannot parse an IPv6 address: "501 5.5.4 Bad ADDR syntax: IPV6:::1"
      const ipv6 = this.attributes('XCLIENT').filter((a) => /^(DEST)?ADDR=IPV6:/.test(a));
      if (reply.code === 501 && ipv6.length && /\b(DEST)?ADDR\b/.test(replyText(reply))) {
        throw new HandoverRefused(`mail server ${this.where} cannot read the client's IPv6 address `
          + `(XCLIENT ${ipv6.join(' ')}: ${reply.code} ${replyText(reply)})`, 'ipv6');
      }
      if (this.opts.requireXclient) {
        throw new HandoverRefused(`mail server ${this.where} refused XCLIENT: ${reply.code} ${replyText(reply)}`);
      }
    } else if (this.opts.requireXclient) {
      throw new HandoverRefused(`mail server ${this.where} does not offer XCLIENT to the relay`);
    }
    if (this.capabilities.has('XFORWARD')) this.clientHandover = 'XFORWARD';
  }

  /** The attributes of the client that the server offers for `verb`, xtext-encoded. */
  private attributes(verb: 'XCLIENT' | 'XFORWARD'): string[] {
    const client = this.opts.client;
    if (!client) return [];
    const addr = xclientAddress(client.addr);
    const port = client.port === undefined ? undefined : String(client.port);
    // an IPv4 client that reached an IPv6 address (a dual-stack balancer): a server that reads IPv4 only would
    // refuse the whole XCLIENT for the destination, which only informs its logs; so it is left out
    const dest = client.destAddr === undefined ? undefined : xclientAddress(client.destAddr);
    const destAddr = dest?.startsWith('IPV6:') && !addr.startsWith('IPV6:') ? undefined : dest;
    const values: Record<string, string | undefined> = verb === 'XCLIENT'
      ? {
        ADDR: addr,
        NAME: client.name ?? '[UNAVAILABLE]',
        REVERSE_NAME: client.reverseName,
        PORT: port,
        DESTADDR: destAddr,
        DESTPORT: destAddr === undefined || client.destPort === undefined ? undefined : String(client.destPort),
      }
      : { ADDR: addr, NAME: client.name ?? '[UNAVAILABLE]', PORT: port, HELO: client.helo, PROTO: client.proto };
    const offered = new Set((this.capabilities.get(verb) ?? '').toUpperCase().split(/\s+/));
    return Object.entries(values)
      .filter(([k, v]) => v !== undefined && offered.has(k))
      .map(([k, v]) => `${k}=${xtext(v!)}`);
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

/**
 * A client address as XCLIENT and XFORWARD write it (Postfix's XCLIENT_README):
 * IPv4 as is, an IPv4-mapped IPv6 address as its IPv4, IPv6 with `IPV6:`.
 */
export function xclientAddress(addr: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  if (mapped) return mapped[1];
  return net.isIPv6(addr) ? `IPV6:${addr}` : addr;
}

function connect(opts: DownstreamOptions): Promise<net.Socket> {
  return connectWithin(net.connect({ host: opts.host, port: opts.port }), opts.connectTimeoutMs).then((socket) => {
    trackServerSession(socket);
    return socket;
  }, (err: Error) => {
    throw new DownstreamError(`mail server ${opts.host}:${opts.port}: ${err.message}`);
  });
}

