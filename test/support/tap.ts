// A recording TCP proxy to put between the relay and its mail server (the
// sink or a real Postfix): it records every byte each side sends, commands
// included, exactly as sent (Sink sees only parsed commands and un-stuffed
// message data). It can also play a server that refuses a command: a line
// the relay sends that `intercept` answers is answered by the tap and not
// passed on.

import net from 'node:net';

export interface TapSession {
  /** bytes the relay sent to the server */
  sent: Buffer[];
  /** bytes the server sent back */
  received: Buffer[];
  closed: boolean;
}

export interface TapOptions {
  /** a command line (without CRLF) the relay sends → the reply to give instead of passing it on (with CRLF) */
  intercept?: (line: string) => string | undefined;
}

export class Tap {
  readonly sessions: TapSession[] = [];
  port = 0;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly targetPort: number, private readonly options: TapOptions = {}) {
    this.server = net.createServer((client) => this.onClient(client));
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Everything the relay sent to the server, all sessions in order of connection, as latin1 text. */
  sent(): string {
    return Buffer.concat(this.sessions.flatMap((s) => s.sent)).toString('latin1');
  }

  /** The command lines the relay sent (DATA content excluded), all sessions. */
  commands(): string[] {
    const out: string[] = [];
    for (const s of this.sessions) {
      let inData = false;
      for (const line of Buffer.concat(s.sent).toString('latin1').split('\r\n')) {
        if (inData) {
          if (line === '.') inData = false;
          continue;
        }
        if (line === '') continue;
        out.push(line);
        if (/^DATA$/i.test(line)) inData = true;
      }
    }
    return out;
  }

  /** Forgets the sessions recorded so far (open ones keep recording into their own record). */
  reset(): void {
    this.sessions.length = 0;
  }

  /** Resolves once no session is open; rejects after `ms`. */
  idle(ms = 10_000): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(
        `the relay still has ${this.sockets.size / 2} session(s) open with the server after ${ms} ms`,
      )), ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onClient(client: net.Socket): void {
    const record: TapSession = { sent: [], received: [], closed: false };
    this.sessions.push(record);
    const server = net.connect(this.targetPort, '127.0.0.1');
    for (const s of [client, server]) {
      s.setNoDelay(true);
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        server.destroy();
        if (this.sockets.has(client) || this.sockets.has(server)) return;
        record.closed = true;
        if (this.sockets.size === 0) for (const w of this.waiters.splice(0)) w();
      });
    }
    let pending = '';
    client.on('data', (d: Buffer) => {
      record.sent.push(d);
      if (!this.options.intercept) {
        server.write(d);
        return;
      }
      pending += d.toString('latin1');
      let at: number;
      while ((at = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, at + 1);
        pending = pending.slice(at + 1);
        const answer = this.options.intercept(line.replace(/\r?\n$/, ''));
        if (answer !== undefined) client.write(answer);
        else server.write(Buffer.from(line, 'latin1'));
      }
    });
    server.on('data', (d: Buffer) => {
      record.received.push(d);
      client.write(d);
    });
    client.on('end', () => server.end());
    server.on('end', () => client.end());
  }
}
