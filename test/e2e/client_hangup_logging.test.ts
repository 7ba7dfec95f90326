// What an outside client can do to the relay's log lines, levels and counts,
// with real software on both sides (the launcher, real clamd, the recording
// sink behind a TCP proxy that holds the server's replies back).

import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { Clamd, startClamd } from '../support/clamd';
import { eventually } from '../support/processes';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { removeTempDir } from '../support/temp_dirs';

/**
 * A TCP proxy in front of the server that holds back each server reply starting
 * with `held` for `holdMs` (a server slow to answer DATA), passing the rest on.
 */
class SlowReplies {
  port = 0;
  /** what the relay sent to the server */
  sent = '';
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(targetPort: number, held: RegExp, holdMs: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.on('data', (d) => {
        this.sent += d.toString('latin1');
        upstream.write(d);
      });
      upstream.on('data', (d) => {
        if (held.test(d.toString('latin1'))) setTimeout(() => client.write(d), holdMs);
        else client.write(d);
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A message sent up to its final dot, then (once `leaveWhen` holds) the socket closed (no QUIT, no wait for the answer). */
async function sendAndLeave(port: number, messageId: string, leaveWhen: () => boolean = () => true): Promise<void> {
  const client = await SmtpTestClient.connect(port);
  await client.read();
  await client.command('EHLO client.example');
  assert.equal((await client.command('MAIL FROM:<a@example.com>')).code, 250);
  assert.equal((await client.command('RCPT TO:<user@example.org>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  client.write(`Message-ID: <${messageId}>\r\nSubject: leaves\r\n\r\nhello\r\n.\r\n`);
  assert.ok(await eventually(leaveWhen, 20_000), 'the moment to leave came');
  client.hangUp();
}

describe('the log and counts as an outside client can drive them', function () {
  this.timeout(120_000);
  let clamd: Clamd;
  let sink: Sink;
  const dirs: string[] = [];

  before(async () => {
    clamd = await startClamd();
    sink = new Sink();
    await sink.start();
  });
  after(async () => {
    await Promise.all([clamd?.stop(), sink?.stop()]);
    for (const d of dirs) removeTempDir(d);
  });

  async function launcher(serverPort: number, smtp: Record<string, string | number> = {}): Promise<Relay> {
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, { serverPort, clamdSocket: clamd.socket, smtp: { num_proc: 1, ...smtp } }));
    dirs.push(path.dirname(cfg));
    return startRelay(['--config', cfg], port);
  }

  it('a client that hangs up after its final dot while the relay sends the message on (the server slow to take DATA): '
    + 'no ERROR, no WARN summary, the summary says the message was not sent', async () => {
    const slow = new SlowReplies(sink.port, /^354 /, 3_000);
    await slow.start();
    const relay = await launcher(slow.port);
    try {
      const received = sink.messages.length;
      // the relay has scanned the message and started sending it: then the client leaves
      await sendAndLeave(relay.port, 'leaves@attack.test', () => /\r\nDATA\r\n/.test(slow.sent));
      const summary = (): string | undefined => relay.output().split('\n').find((l) => l.includes('message_id="<leaves@attack.test>"'));
      assert.ok(await eventually(() => summary() !== undefined, 20_000), relay.output());
      const line = summary()!;
      const trace = /trace=(\S+)/.exec(line)![1];
      // the client left: the relay did not fail, nor did the server; an outside client must not be able to fill -p warning
      assert.match(line, /\[NOTICE\] /, line);
      assert.doesNotMatch(line, / server=/, `the server was not given the message: ${line}`);
      assert.match(line, / reply=none /, line);
      const errors = relay.output().split('\n').filter((l) => l.includes(`[${trace}]`) && /\[(ERROR|WARN)\]/.test(l));
      assert.deepEqual(errors, [], 'a client hanging up is not an error of the relay');
      assert.equal(sink.messages.length, received, 'nothing was delivered for a client that left before its answer');
    } finally {
      await relay.stop('SIGKILL');
      await slow.stop();
    }
  });
});
