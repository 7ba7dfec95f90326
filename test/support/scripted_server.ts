// A scripted SMTP server for the tests: a raw TCP server whose greeting, EHLO
// lines and replies to each command are set by the test (and may change
// while it runs), and which records every byte it receives, exactly as sent.
// It speaks enough SMTP for a relay to mirror a client session through it:
// XCLIENT (a new greeting after it, by default 220), AUTH PLAIN (initial
// response or 334) and AUTH LOGIN (334 challenges) against one fixed user and
// password (235 / 535), VRFY, EXPN, HELP, NOOP, ETRN, RSET, QUIT, MAIL and RCPT
// with any parameters (DSN's included: they are recorded as sent), DATA with a
// configurable reply, and a configurable reply to the end of data. Replies may
// be multi-line (see `reply()`). `down()`/`up()` stop and restart listening on
// the same port (a server that is down: connections are refused).

import net from 'node:net';

/** An SMTP reply as the server writes it: `reply(250, 'a', 'b')` is `250-a CRLF 250 b CRLF`. */
export function reply(code: number, ...lines: string[]): string {
  const text = lines.length ? lines : [''];
  return text.map((line, i) => `${code}${i < text.length - 1 ? '-' : ' '}${line}\r\n`).join('');
}

/** A reply given as text, or made from the command line that it answers. */
export type Scripted = string | ((line: string, session: ScriptedSession) => string);

export interface ScriptedServerOptions {
  /** the greeting at connect (default `220 mx.scripted.test ESMTP before XCLIENT`) */
  greeting?: string;
  /** the reply to XCLIENT: the greeting of the session it starts (default `220 mx.scripted.test ESMTP after XCLIENT`) */
  xclient?: Scripted;
  /** the EHLO reply's lines: its first line's text, then the extensions, in order (see EHLO_POSTFIX_LIKE) */
  ehlo?: string[];
  /** the whole reply to EHLO, instead of a 250 with `ehlo` (e.g. a refusal of some names) */
  ehloReply?: Scripted;
  /** the reply to HELO (default `250 ` + the EHLO reply's first line) */
  helo?: Scripted;
  /** the user and password AUTH accepts */
  auth?: { user: string; password: string };
  authSuccess?: string;
  authFailure?: string;
  mail?: Scripted;
  rcpt?: Scripted;
  /** the reply to DATA: a 354 goes on to the message, anything else stays in command mode */
  data?: Scripted;
  /** the reply to the end of data (default `250 2.0.0 Ok: queued as SCRIPTED<n>`) */
  endOfData?: Scripted;
  vrfy?: Scripted;
  expn?: Scripted;
  help?: Scripted;
  noop?: Scripted;
  etrn?: Scripted;
  rset?: Scripted;
}

/** The extensions a Postfix 3.7 offers a host authorized for XCLIENT and XFORWARD, and Exchange's BINARYMIME */
export const EHLO_POSTFIX_LIKE = [
  'mx.scripted.test',
  'PIPELINING',
  'SIZE 52428800',
  'VRFY',
  'ETRN',
  'STARTTLS',
  'AUTH PLAIN LOGIN',
  'AUTH=PLAIN LOGIN',
  'ENHANCEDSTATUSCODES',
  '8BITMIME',
  'DSN',
  'SMTPUTF8',
  'CHUNKING',
  'BINARYMIME',
  'XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT',
  'XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT',
];

export interface ScriptedSession {
  /** every byte the client (the relay) sent, in order */
  received: Buffer[];
  /** every byte the server sent */
  sent: string[];
  /** the command lines received, in order (message content excluded; AUTH continuation lines included) */
  commands: string[];
  /** each message's content exactly as received between the 354 and the final dot (still dot-stuffed), the dot line excluded */
  messages: Buffer[];
  /** true once AUTH succeeded */
  authenticated: boolean;
  closed: boolean;
}

type State =
  | { kind: 'command' }
  | { kind: 'data'; chunks: string[] }
  | { kind: 'auth-plain' }
  | { kind: 'auth-login-user' }
  | { kind: 'auth-login-password'; user: string };

export class ScriptedServer {
  readonly sessions: ScriptedSession[] = [];
  port = 0;
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly waiters: (() => void)[] = [];
  private queued = 0;

  /** the behaviour can change while it runs (it is read at each command) */
  constructor(public options: ScriptedServerOptions = {}) {}

  async start(port = 0): Promise<number> {
    const server = net.createServer((socket) => this.onClient(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    server.on('error', () => undefined);
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Stops listening (connections to the port are refused) and cuts the open sessions. */
  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port. */
  async up(): Promise<void> {
    if (!this.server) await this.start(this.port);
  }

  stop(): Promise<void> {
    return this.down();
  }

  /** Forgets the sessions recorded so far (open ones keep recording into their own record). */
  reset(): void {
    this.sessions.length = 0;
  }

  /** The command lines of every session, in order of connection. */
  commands(): string[] {
    return this.sessions.flatMap((s) => s.commands);
  }

  /** Every message received, all sessions. */
  messages(): Buffer[] {
    return this.sessions.flatMap((s) => s.messages);
  }

  /** Everything received, all sessions, as latin1 text. */
  receivedText(): string {
    return Buffer.concat(this.sessions.flatMap((s) => s.received)).toString('latin1');
  }

  /** Resolves once no session is open; rejects after `ms`. */
  idle(ms = 10_000): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(
        `the relay still has ${this.sockets.size} session(s) open with the scripted server after ${ms} ms`,
      )), ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Resolves once `ok()` holds for the recorded sessions (checked at each received chunk); rejects after `ms`. */
  async until(ok: () => boolean, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > deadline) {
        throw new Error(`the scripted server did not see what was awaited within ${ms} ms; commands: ${this.commands().join(' / ')}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private onClient(socket: net.Socket): void {
    const session: ScriptedSession = { received: [], sent: [], commands: [], messages: [], authenticated: false, closed: false };
    this.sessions.push(session);
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      session.closed = true;
      this.sockets.delete(socket);
      if (this.sockets.size === 0) for (const w of this.waiters.splice(0)) w();
    });
    const write = (text: string): void => {
      session.sent.push(text);
      if (!socket.destroyed) socket.write(text);
    };
    write(this.options.greeting ?? reply(220, 'mx.scripted.test ESMTP before XCLIENT'));
    let state: State = { kind: 'command' };
    let pending = '';
    socket.on('data', (d: Buffer) => {
      session.received.push(d);
      pending += d.toString('latin1');
      let at: number;
      while ((at = pending.indexOf('\n')) >= 0) {
        const raw = pending.slice(0, at + 1);
        pending = pending.slice(at + 1);
        const line = raw.replace(/\r?\n$/, '');
        if (state.kind === 'data') {
          if (line === '.') {
            session.messages.push(Buffer.from(state.chunks.join(''), 'latin1'));
            state = { kind: 'command' };
            this.queued++;
            write(this.answer(this.options.endOfData, reply(250, `2.0.0 Ok: queued as SCRIPTED${this.queued}`), line, session));
          } else {
            state.chunks.push(raw);
          }
          continue;
        }
        session.commands.push(line);
        const next = this.command(line, state, session, write);
        if (next === 'quit') {
          socket.end();
          return;
        }
        state = next;
      }
    });
  }

  private answer(scripted: Scripted | undefined, fallback: string, line: string, session: ScriptedSession): string {
    if (scripted === undefined) return fallback;
    return typeof scripted === 'function' ? scripted(line, session) : scripted;
  }

  private command(line: string, state: State, session: ScriptedSession, write: (text: string) => void): State | 'quit' {
    const o = this.options;
    const auth = o.auth ?? { user: 'scripted-user', password: 'scripted-pass' };
    const success = o.authSuccess ?? reply(235, '2.7.0 Authentication successful');
    const failure = o.authFailure ?? reply(535, '5.7.8 Error: authentication failed: authentication failure');
    const decode = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');
    const checkPlain = (b64: string): boolean => {
      const [, user, password] = decode(b64).split('\0');
      return user === auth.user && password === auth.password;
    };
    const authDone = (ok: boolean): State => {
      session.authenticated ||= ok;
      write(ok ? success : failure);
      return { kind: 'command' };
    };
    if (state.kind !== 'command') {
      if (line === '*') {
        write(reply(501, '5.7.0 Authentication aborted'));
        return { kind: 'command' };
      }
      if (state.kind === 'auth-plain') return authDone(checkPlain(line));
      if (state.kind === 'auth-login-user') {
        write(reply(334, 'UGFzc3dvcmQ6'));
        return { kind: 'auth-login-password', user: decode(line) };
      }
      if (state.kind === 'auth-login-password') return authDone(state.user === auth.user && decode(line) === auth.password);
    }
    const [verbRaw, ...args] = line.split(' ');
    const verb = verbRaw.toUpperCase();
    const ehlo = o.ehlo ?? EHLO_POSTFIX_LIKE;
    const answer = (scripted: Scripted | undefined, fallback: string): State => {
      write(this.answer(scripted, fallback, line, session));
      return { kind: 'command' };
    };
    switch (verb) {
      case 'EHLO':
        return answer(o.ehloReply, reply(250, ...ehlo));
      case 'HELO':
        return answer(o.helo, reply(250, ehlo[0]));
      case 'XCLIENT':
        return answer(o.xclient, reply(220, 'mx.scripted.test ESMTP after XCLIENT'));
      case 'AUTH': {
        const mechanism = (args[0] ?? '').toUpperCase();
        if (session.authenticated) return answer(undefined, reply(503, '5.5.1 Error: already authenticated'));
        if (mechanism === 'PLAIN') {
          if (args[1]) return authDone(args[1] !== '=' && checkPlain(args[1]));
          write(reply(334, ''));
          return { kind: 'auth-plain' };
        }
        if (mechanism === 'LOGIN') {
          if (args[1]) {
            write(reply(334, 'UGFzc3dvcmQ6'));
            return { kind: 'auth-login-password', user: decode(args[1]) };
          }
          write(reply(334, 'VXNlcm5hbWU6'));
          return { kind: 'auth-login-user' };
        }
        return answer(undefined, reply(535, '5.7.8 Error: authentication failed: Invalid authentication mechanism'));
      }
      case 'MAIL':
        return answer(o.mail, reply(250, '2.1.0 Ok'));
      case 'RCPT':
        return answer(o.rcpt, reply(250, '2.1.5 Ok'));
      case 'DATA': {
        const text = this.answer(o.data, reply(354, 'End data with <CR><LF>.<CR><LF>'), line, session);
        write(text);
        return text.startsWith('354') ? { kind: 'data', chunks: [] } : { kind: 'command' };
      }
      case 'VRFY':
        return answer(o.vrfy, reply(252, `2.0.0 ${args.join(' ')}`));
      case 'EXPN':
        return answer(o.expn, reply(502, '5.5.1 EXPN not allowed'));
      case 'HELP':
        return answer(o.help, reply(214, '2.0.0 Scripted help'));
      case 'NOOP':
        return answer(o.noop, reply(250, '2.0.0 Ok'));
      case 'ETRN':
        return answer(o.etrn, reply(250, 'Queuing started'));
      case 'RSET':
        return answer(o.rset, reply(250, '2.0.0 Ok'));
      case 'QUIT':
        write(reply(221, '2.0.0 Bye'));
        return 'quit';
      default:
        return answer(undefined, reply(502, '5.5.2 Error: command not recognized'));
    }
  }
}
