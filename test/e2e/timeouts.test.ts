// timeout_client is the client's silence only: while the relay waits on the
// mail server or on clamd, the client is not timed out. Otherwise a client is
// told "421 timeout" about a message the server then takes, and its retry
// makes a duplicate. Order of events asserted, with generous bounds.

import assert from 'node:assert/strict';
import { Clamd, startClamd } from '../support/clamd';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';

describe('timeout_client counts only the client\'s own silence', function () {
  this.timeout(60_000);
  let clamd: Clamd;
  before(async () => { clamd = await startClamd(); });
  after(() => clamd?.stop());

  async function withRelay(sink: Sink, smtp: Record<string, string | number>, clamdSocket: string, test: (relay: Relay) => Promise<void>): Promise<void> {
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

  it("a server that answers the final dot 3 s after timeout_client: the client gets the server's 250, the server holds one message", async () => {
    const sink = new Sink({ dataDelayMs: 5_000 });
    await withRelay(sink, { timeout_client: 2 }, clamd.socket, async (relay) => {
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO client.example');
      const started = Date.now();
      const { data } = await client.send('a@example.com', ['b@example.org'], 'Subject: slow server\r\nMessage-ID: <slow-1@test>\r\n\r\nbody\r\n');
      const waited = Date.now() - started;
      assert.equal(data?.code, 250, `the client was told ${data?.code} ${data?.lines.join(' ')}`);
      assert.ok(waited >= 4_500, `the reply came after ${waited} ms, before the server's`);
      assert.equal(sink.messages.length, 1);
      // and the session goes on: the client's own silence still counts afterwards
      const noop = await client.command('NOOP');
      assert.equal(noop.code, 250);
      client.end();
    });
  });

  it('clamd that hangs longer than timeout_client: the client gets the policy\'s 451 after av_scan_obj_timeout, not 421 timeout', async () => {
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
        assert.match(data?.lines.join(' ') ?? '', /^4\.7\.1 .*not scanned/);
        assert.equal(sink.messages.length, 0);
      });
    } finally {
      await stalled.stop();
    }
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
