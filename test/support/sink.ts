// A downstream mail server for the tests, on nodemailer's smtp-server: it
// records every message it accepts and can refuse recipients. XCLIENT is on,
// so it sees the relay's client as the relay reports it.

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
  /** answer the end of DATA with this code/text instead of accepting */
  dataReply?: { code: number; text: string };
  /** hold the DATA reply this long (ms) */
  dataDelayMs?: number;
}

export class Sink {
  readonly messages: ReceivedMessage[] = [];
  port = 0;
  private readonly server: SMTPServer;

  constructor(private readonly options: SinkOptions = {}) {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      useXClient: true,
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
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const finish = (): void => {
            const reply = this.options.dataReply;
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
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    const address = this.server.server.address();
    this.port = typeof address === 'object' && address ? address.port : port;
    return this.port;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
