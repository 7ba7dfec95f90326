// A downstream mail server for the tests, on nodemailer's smtp-server: it
// records every message it accepts and can refuse recipients. XCLIENT is on
// (unless `xclient: false`), so it sees the relay's client as the relay
// reports it; XFORWARD is off unless `xforward: true`. It records what
// smtp-server parsed: for the exact bytes the relay sends, put a Tap
// (tap.ts) in front of it.

import { SMTPServer, SMTPServerAddress, SMTPServerSession } from 'smtp-server';

export interface ReceivedMessage {
  from: string;
  to: string[];
  data: Buffer;
  /** the client address the server judged (after XCLIENT) */
  clientAddress: string;
}

export interface SinkOptions {
  /** return an error text to refuse the recipient with 550 */
  refuseRcpt?: (address: string, session: SMTPServerSession) => string | undefined;
  /** answer the end of DATA with this code/text instead of accepting (a function: decided per message, undefined accepts) */
  dataReply?: { code: number; text: string } | ((data: Buffer) => { code: number; text: string } | undefined);
  /** hold the DATA reply this long (ms) */
  dataDelayMs?: number;
  /** close the connection after receiving the data, without a reply */
  dropAfterData?: boolean;
  /** offer and accept XCLIENT (default true); fixed at construction */
  xclient?: boolean;
  /** offer and accept XFORWARD (default false); fixed at construction */
  xforward?: boolean;
}

export class Sink {
  readonly messages: ReceivedMessage[] = [];
  port = 0;
  dropped = 0;
  /** bytes received in DATA so far, finished messages or not */
  dataBytes = 0;
  private readonly sockets = new Set<import('node:net').Socket>();
  private readonly server: SMTPServer;

  /** the behaviour can change while it runs */
  constructor(public options: SinkOptions = {}) {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      useXClient: options.xclient ?? true,
      useXForward: options.xforward ?? false,
      logger: false,
      size: 200 * 1024 * 1024,
      onRcptTo: (address: SMTPServerAddress, session, callback) => {
        const refusal = this.options.refuseRcpt?.(address.address, session);
        if (refusal) {
          const err = new Error(refusal) as Error & { responseCode: number };
          err.responseCode = 550;
          return callback(err);
        }
        callback();
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => {
          chunks.push(c);
          this.dataBytes += c.length;
        });
        stream.on('end', () => {
          const finish = (): void => {
            if (this.options.dropAfterData) {
              // the relay's own port: XCLIENT PORT made remotePort the client's (smtp-server keeps the first as PORT:DEFAULT)
              const xclient = (session as SMTPServerSession & { xClient?: Map<string, unknown> }).xClient;
              const port = Number(xclient?.get('PORT:DEFAULT')) || session.remotePort;
              for (const socket of this.sockets) if (socket.remotePort === port) socket.destroy();
              this.dropped++;
              return;
            }
            const decide = this.options.dataReply;
            const reply = typeof decide === 'function' ? decide(Buffer.concat(chunks)) : decide;
            if (reply) {
              const err = new Error(reply.text) as Error & { responseCode: number };
              err.responseCode = reply.code;
              return callback(err);
            }
            this.messages.push({
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((r) => r.address),
              data: Buffer.concat(chunks),
              clientAddress: session.remoteAddress,
            });
            callback(null, `Ok: queued as test${this.messages.length}`);
          };
          if (this.options.dataDelayMs) setTimeout(finish, this.options.dataDelayMs);
          else finish();
        });
      },
    });
  }

  async start(port = 0): Promise<number> {
    // a client (the relay) cut off mid-session resets its socket: not the sink's failure
    this.server.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server.server.on('connection', (socket: import('node:net').Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    const address = this.server.server.address();
    this.port = typeof address === 'object' && address ? address.port : port;
    return this.port;
  }

  /** Stops listening and cuts every open connection (a crash, as the relay sees it). */
  stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
