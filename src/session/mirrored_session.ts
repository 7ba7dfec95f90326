// One client session mirrored to the mail server (esets_smtp(1): "the entire
// client-server e-mail communication is transparent, except for the e-mail
// itself"). This object owns the server connection and the session's state;
// the esets_forward plugin only turns Haraka's hooks into calls here and the
// replies back into Haraka's answers. Like Postfix's smtpd_proxy, every step
// is one command and its reply.
//
//   connecting --open--> ready --MAIL 2xx--> transaction --message--> ready
//        ready --AUTH 334--> auth --last reply--> ready       any --> closed
//
// The server is opened at connect and judges the real client: XCLIENT (a
// forward-confirmed name only), then the client's own HELO/EHLO. If it goes
// away between transactions, the next command opens it again the same way; a
// client that authenticated is told 421 to authenticate again (as the server
// closing its session would have told it), never carried on unauthenticated,
// nor as a name the relay guessed: the server may know the client under
// another (a realm added, a canonical form), which XCLIENT LOGIN would change.

import { sizeParameter } from '../lib/message_size';
import { enhancedCode, replyEntry } from '../lib/relay_replies';
import { clientEhloLines, loggableCommand } from '../lib/ehlo_mirror';
import type { SmtpReply } from '../lib/smtp_reply';
import { replyText } from '../lib/smtp_reply';
import { ClientIdentity, DownstreamError, DownstreamSession } from '../io/downstream_session';
import { SERVER_KEEPALIVE_MS, SERVER_KEEPALIVE_REPLY_MS, SERVER_QUIT_MS } from '../lib/timeout_budget';


export type SessionState = 'connecting' | 'ready' | 'auth' | 'transaction' | 'closed';

/** What a reopened server session means for the client: nothing (it had not authenticated), or its authentication lost. */
export type ReopenAuth = 'none' | 'lost';

/** The client authenticated and the reopened server session does not know it: the client must authenticate again. */
export class AuthNotCarried extends DownstreamError {
  constructor() {
    // the client's reply is the table's, with its trace id (esets_forward); this one is what the error carries
    const { code, enhanced, text } = replyEntry({ kind: 'auth_again' });
    super('the reopened mail server session does not know the client\'s authentication', {
      code, lines: [`${enhancedCode(enhanced)} ${text}`],
    });
  }
}

export interface MirrorSettings {
  host: string;
  port: number;
  /** the relay's own EHLO name, before XCLIENT */
  heloName: string;
  requireXclient: boolean;
  /** the server to open the session again with, when it went away (a reload may have moved it); default host:port */
  target?: () => { host: string; port: number };
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  onProtocol?: (direction: 'C' | 'S', line: string) => void;
  /** the server session was opened again after the server closed it */
  onReopen?: (auth: ReopenAuth) => void;
}

/** A MAIL or RCPT parameter as the client wrote it (null: a keyword without value). */
export type EsmtpParams = Record<string, string | null>;

export class MirroredSession {
  state: SessionState = 'connecting';
  private server?: DownstreamSession;
  private hello?: { verb: 'HELO' | 'EHLO'; name: string; reply: SmtpReply };
  private keepAliveTimer?: NodeJS.Timeout;
  private keepAliveReply?: Promise<unknown>;
  /** the server answered the client's AUTH with 235 */
  private authenticated = false;

  constructor(private readonly settings: MirrorSettings, readonly client: ClientIdentity) {}

  get where(): string {
    return `${this.settings.host}:${this.settings.port}`;
  }

  get handover(): string {
    return this.server?.clientHandover ?? 'none';
  }

  /** Opens the server session; its greeting (after XCLIENT) is the client's. */
  async open(): Promise<SmtpReply> {
    const server = await DownstreamSession.open({ ...this.settings, ...this.settings.target?.(), client: this.client });
    if (this.state === 'closed') {
      // the client left while the server session was being opened
      server.close();
      throw new DownstreamError('client gone');
    }
    this.server = server;
    this.state = 'ready';
    // the server's SIZE to the relay's own EHLO: the limit a client that says HELO (no extensions) is held to
    this.nextHopSize = server.capabilities.has('SIZE') ? sizeParameter(server.capabilities.get('SIZE')) : undefined;
    return server.greeting;
  }

  /** The server's SIZE limit as its EHLO reply to the relay said (undefined: no SIZE; 0: no fixed limit). */
  nextHopSize?: number;

  /** The client's HELO/EHLO, with its own name; an EHLO reply is mirrored (see lib/ehlo_mirror). */
  async helloFrom(verb: 'HELO' | 'EHLO', name: string): Promise<SmtpReply> {
    this.endAuth();
    this.client.helo = name;
    this.client.proto = verb === 'EHLO' ? 'ESMTP' : 'SMTP';
    const server = await this.live();
    const reply = await server.hello(verb, name);
    if (reply.code === 250) this.hello = { verb, name, reply };
    this.state = 'ready';
    return reply;
  }

  /** The EHLO reply lines for the client: the server's, minus what the relay never offers. */
  ehloLines(): string[] | undefined {
    return this.hello?.verb === 'EHLO' ? clientEhloLines(this.hello.reply) : undefined;
  }

  /** The server advertises this extension (upper case) to the relay. */
  offers(extension: string): boolean {
    return this.server?.capabilities.has(extension) ?? false;
  }

  /**
   * AUTH, and each line of the exchange that follows while the server says
   * 334. Never logged: the protocol log shows the verb and mechanism only.
   */
  async auth(line: string): Promise<SmtpReply> {
    // an exchange whose server session is gone is over: its next line must not become a command of a new session
    if (this.state === 'auth' && !this.server?.alive) {
      this.state = 'ready';
      throw new DownstreamError('the mail server session was lost during AUTH');
    }
    const server = await this.live();
    const response = this.state === 'auth';
    if (!response) await this.resetEnded(server);
    const reply = await server.command(line, undefined, loggableCommand(line, response));
    if (reply.code === 235) this.authenticated = true;
    // (AUTH refused inside a transaction leaves the transaction as it was)
    this.state = reply.code === 334 ? 'auth' : this.state === 'transaction' ? 'transaction' : 'ready';
    return reply;
  }

  /** The server's last reply was a 334 and nothing else was sent since: the next client line answers it. */
  get authenticating(): boolean {
    return this.state === 'auth';
  }

  /** Any other command ends an AUTH exchange (the server takes it as the answer, and says so). */
  private endAuth(): void {
    if (this.state === 'auth') this.state = 'ready';
  }

  /** VRFY, EXPN, HELP, NOOP, ETRN: the server answers. */
  async verb(line: string): Promise<SmtpReply> {
    this.endAuth();
    const server = await this.live();
    await this.resetEnded(server);
    return server.command(line);
  }

  /**
   * A transaction the client ended (RSET, a refusal) is still open at the server until the next command that
   * needs it closed: RSET first (Postfix refuses MAIL, AUTH and ETRN inside a transaction).
   */
  private async resetEnded(server: DownstreamSession): Promise<void> {
    if (!server.inTransaction || this.state === 'transaction') return;
    const rset = await server.command('RSET');
    if (rset.code !== 250) throw new DownstreamError(`mail server refused RSET: ${rset.code} ${replyText(rset)}`);
    server.inTransaction = false;
  }

  async mail(address: string, params: EsmtpParams): Promise<SmtpReply> {
    this.endAuth();
    // a NOOP of the last transaction still out: its reply first (RSET is never pipelined behind it)
    await this.stopKeepAlive();
    const server = await this.live();
    // (a MAIL starts the client's transaction: any before it has ended)
    if (this.state === 'transaction') this.state = 'ready';
    await this.resetEnded(server);
    await server.forwardClient();
    const reply = await server.command(`MAIL FROM:${address}${paramText(params)}`);
    if (reply.code === 250) {
      server.inTransaction = true;
      this.state = 'transaction';
    }
    return reply;
  }

  async rcpt(address: string, params: EsmtpParams): Promise<SmtpReply> {
    const server = this.server;
    if (!server?.alive || this.state !== 'transaction') throw new DownstreamError('no mail transaction open with the mail server');
    return server.command(`RCPT TO:${address}${paramText(params)}`);
  }

  /** The server went away in the middle of the client's transaction (its MAIL and RCPTs are gone with it). */
  get transactionLost(): boolean {
    return this.state === 'transaction' && !this.server?.alive;
  }

  /** The client's transaction ended without a message (RSET, or refused): the server's is reset at the next MAIL. */
  reset(): void {
    void this.stopKeepAlive();
    if (this.state !== 'closed' && this.state !== 'connecting') this.state = 'ready';
  }

  /**
   * From the client's DATA until the message goes: the server's transaction
   * waits on the client and the scanners, so a NOOP keeps it from timing out.
   */
  keepAlive(): void {
    void this.stopKeepAlive();
    this.keepAliveTimer = setInterval(() => {
      const server = this.server;
      if (!server?.alive || this.state !== 'transaction' || this.keepAliveReply) return;
      this.keepAliveReply = server.command('NOOP', SERVER_KEEPALIVE_REPLY_MS).catch(() => undefined)
        .finally(() => { this.keepAliveReply = undefined; });
    }, SERVER_KEEPALIVE_MS);
    this.keepAliveTimer.unref();
  }

  /** No more NOOPs; resolves once the one in flight has its reply (so DATA is never pipelined behind it). */
  private async stopKeepAlive(): Promise<void> {
    clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
    await this.keepAliveReply;
  }

  /**
   * DATA and the message (`parts`: its bytes, not stuffed); the server's reply
   * to DATA if it refused, else to the message, due by `deadline` (epoch ms).
   */
  async message(parts: AsyncIterable<Buffer>, deadline: number): Promise<SmtpReply> {
    await this.stopKeepAlive();
    const server = this.server;
    if (!server?.alive || this.state !== 'transaction') throw new DownstreamError('the mail server session was lost before DATA');
    const reply = await server.sendMessage(parts, deadline);
    // a refusal at end of data may leave the server's transaction open (Postfix's smtpd_end_of_data_restrictions
    // do): the next MAIL is preceded by RSET, as Postfix's own client does
    server.inTransaction = reply.code >= 400;
    // (the client may have left meanwhile: closed stays closed)
    if ((this.state as SessionState) !== 'closed') this.state = 'ready';
    return reply;
  }

  /** Whether the address may be written in UTF-8 (the server offers SMTPUTF8). */
  get utf8(): boolean {
    return this.offers('SMTPUTF8');
  }

  /** QUIT to the server; its reply (the session then ends). */
  async quit(): Promise<SmtpReply> {
    const server = this.server;
    if (!server?.alive || this.state === 'closed') throw new DownstreamError('no session with the mail server');
    this.state = 'closed';
    const reply = await server.command('QUIT', SERVER_QUIT_MS);
    server.close();
    return reply;
  }

  close(): void {
    void this.stopKeepAlive();
    this.state = 'closed';
    this.server?.close();
  }

  /** The server session, opened again (XCLIENT, then the client's HELO/EHLO) if it went away. */
  private async live(): Promise<DownstreamSession> {
    if (this.state === 'closed') throw new DownstreamError('session closed');
    if (this.server?.alive) return this.server;
    this.server?.close();
    const greeting = await this.open();
    if (greeting.code !== 220) throw new DownstreamError(`mail server greeting: ${greeting.code} ${replyText(greeting)}`, greeting);
    this.settings.onReopen?.(this.authenticated ? 'lost' : 'none');
    if (this.authenticated) {
      this.close();
      throw new AuthNotCarried();
    }
    if (this.hello) {
      const again = await this.server!.hello(this.hello.verb, this.hello.name);
      if (again.code !== 250) throw new DownstreamError(`mail server refused ${this.hello.name}: ${again.code} ${replyText(again)}`, again);
    }
    return this.server!;
  }

}

/** The client's parameters, passed on as written (the client saw the server's own extensions). */
function paramText(params: EsmtpParams): string {
  const out = Object.entries(params).map(([k, v]) => (v === null || v === undefined ? k : `${k}=${v}`));
  return out.length ? ` ${out.join(' ')}` : '';
}
