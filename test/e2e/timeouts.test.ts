// timeout_client is the client's silence only: while the relay waits on the
// mail server or on clamd, the client is not timed out. Otherwise a client is
// told "421 timeout" about a message the server then takes, and its retry
// makes a duplicate. Order of events asserted, with generous bounds.

import assert from 'node:assert/strict';
import { Clamd, startClamd } from '../support/clamd';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { eventually } from '../support/processes';
import { SmtpTestClient } from '../support/smtp_client';
import { withSummary } from '../support/relay_reply';

/** The summary line of one message, once written (it follows the client's answer). */
async function summaryOf(relay: Relay, messageId: string): Promise<string> {
  const find = (): string | undefined => relay.output().split('\n').find((l) => l.includes(`message_id="<${messageId}>"`));
  await eventually(() => find() !== undefined);
  const line = find();
  assert.ok(line, `no summary line for ${messageId}`);
  return line;
}

describe('timeout_client counts only the client\'s own silence', function () {
  this.timeout(60_000);
  let clamd: Clamd;
  before(async () => { clamd = await startClamd(); });
  after(() => clamd?.stop());

  async function withRelay(
    sink: Sink, smtp: Record<string, string | number>, clamdSocket: string, test: (relay: Relay) => Promise<void>,
  ): Promise<void> {
    await sink.start();
    const port = await freePort();
    const relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket, smtp }))], port);
    try {
      await test(relay);
    } finally {
      await relay.stop();
      await sink.stop();
    }
  }

  it("a server that answers the final dot 5 s after timeout_client: the client gets the server's 250, "
    + 'the server holds one message', async () => {
    const sink = new Sink({ dataDelayMs: 7_000 });
    await withRelay(sink, { timeout_client: 2 }, clamd.socket, async (relay) => {
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO client.example');
      const started = Date.now();
      const { data } = await client.send(
        'a@example.com', ['b@example.org'], 'Subject: slow server\r\nMessage-ID: <slow-1@test>\r\n\r\nbody\r\n',
      );
      const waited = Date.now() - started;
      assert.equal(data?.code, 250, `the client was told ${data?.code} ${data?.lines.join(' ')}`);
      assert.ok(waited >= 6_500, `the reply came after ${waited} ms, before the server's`);
      assert.equal(sink.messages.length, 1);
      // the summary line says what the client was told, after the server said it
      const summary = await summaryOf(relay, 'slow-1@test');
      assert.match(summary, / server=accepted server_reply="250 [^"]*"( queue_id="[^"]*")? reply="250 [^"]*" scan=\d+ms time=\d+ms$/);
      assert.ok(Number(/time=(\d+)ms/.exec(summary)![1]) >= 6_500, summary);
      // and the session goes on: the client's own silence still counts afterwards
      const noop = await client.command('NOOP');
      assert.equal(noop.code, 250);
      client.end();
    });
  });

  it('clamd that hangs longer than timeout_client: the client gets the policy\'s 451 after av_scan_obj_timeout, '
    + 'not 421 timeout', async () => {
    const stalled = await startClamd();
    stalled.stall();
    const sink = new Sink();
    try {
      await withRelay(sink, { timeout_client: 2, av_scan_obj_timeout: 5 }, stalled.socket, async (relay) => {
        const client = await SmtpTestClient.connect(relay.port);
        await client.read();
        await client.command('EHLO client.example');
        const { data } = await client.send('a@example.com', ['b@example.org'], 'Subject: stalled scanner\r\n\r\nbody\r\n');
        client.end();
        assert.equal(data?.code, 451, `${data?.code} ${data?.lines.join(' ')}`);
        assert.match(await withSummary(relay.output, data!.lines.join(' ')), /^4\.7\.1 .* \|\| log: .*av="not scanned: clamd.* did not answer/);
        assert.equal(sink.messages.length, 0);
      });
    } finally {
      await stalled.stop();
    }
  });

  it('a server that never answers the final dot: 421 4.4.2 at timeout_message, '
    + 'logged as outcome unknown (it may have been delivered)', async () => {
    const sink = new Sink({ dataDelayMs: 30_000 });
    await withRelay(sink, { timeout_client: 2, timeout_message: 10 }, clamd.socket, async (relay) => {
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO client.example');
      const started = Date.now();
      const { data } = await client.send(
        'a@example.com', ['b@example.org'], 'Subject: lost answer\r\nMessage-ID: <lost-1@test>\r\n\r\nbody\r\n',
      );
      const waited = Date.now() - started;
      assert.equal(data?.code, 421, `the client was told ${data?.code} ${data?.lines.join(' ')}`);
      assert.match(data?.lines.join(' ') ?? '', /^4\.4\.2 .*may have been delivered/);
      assert.ok(waited >= 9_000 && waited < 20_000, `answered after ${waited} ms, not at timeout_message`);
      assert.ok(await eventually(() => client.closed), 'the relay closes the session: its server session is gone');
      const summary = await summaryOf(relay, 'lost-1@test');
      assert.match(summary, / server=unknown reply="421 4\.4\.2 [^"]*"/);
      assert.match(relay.output(), /\[ERROR\].*may have been delivered/);
    });
  });

  it('a client that goes silent is still timed out after timeout_client', async () => {
    const sink = new Sink();
    await withRelay(sink, { timeout_client: 2 }, clamd.socket, async (relay) => {
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO client.example');
      const started = Date.now();
      const reply = await client.read();
      assert.equal(reply.code, 421, 'the relay closes a silent session');
      assert.ok(Date.now() - started < 10_000);
      client.end();
    });
  });
});
