// A clamd that hangs (SIGSTOP: it still accepts connections, in the kernel's
// backlog, but never answers) with a second one listed: clamd answers nothing
// until its verdict, so the relay asks the busy daemon for PONG on the side;
// no PONG, and the message goes to the next daemon, and the hung one is
// skipped for a while. Nothing lost, nothing doubled.

import assert from 'node:assert/strict';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';

describe('clamd health: a hung daemon is found by PING and skipped', function () {
  this.timeout(90_000);
  let a: Clamd;
  let b: Clamd;
  let sink: Sink;
  let relay: Relay;

  beforeEach(async () => {
    [a, b] = await Promise.all([startClamd(), startClamd()]);
    sink = new Sink();
    await sink.start();
    const port = await freePort();
    // a long scan timeout: only PING can move the message on in time
    relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, {
      serverPort: sink.port, clamdSocket: `${a.socket}, ${b.socket}`, smtp: { av_scan_obj_timeout: 60 },
    }))], port);
  });

  afterEach(async () => {
    await relay?.stop();
    await sink?.stop();
    await a?.stop();
    await b?.stop();
  });

  it('with A hung, messages keep flowing through B: right verdicts, each clean one delivered once', async () => {
    a.stall();
    const client = await SmtpTestClient.connect(relay.port);
    await client.read();
    await client.command('EHLO client.example');
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const infected = i % 2 === 1;
      const started = Date.now();
      const { data } = await client.send(
        'a@example.com', ['b@example.org'], `Subject: m${i}\r\nMessage-ID: <health-${i}@test>\r\n\r\n${infected ? EICAR : 'clean'}\r\n`,
      );
      times.push(Date.now() - started);
      assert.equal(data?.code, infected ? 550 : 250, `message ${i}: ${data?.code} ${data?.lines.join(' ')}`);
    }
    client.end();
    const ids = sink.messages.map((m) => /Message-ID: (<[^>]+>)/.exec(m.data.toString())?.[1]);
    assert.deepEqual(ids, ['<health-0@test>', '<health-2@test>', '<health-4@test>']);
    // the first message waited for the PING; A is then skipped: the others do not wait for it
    const later = times.slice(1);
    assert.ok(Math.max(...later) < Math.max(times[0], 3_000), `times ${times.join(', ')} ms`);
  });

  it('a scan in flight on A when A hangs completes on B', async () => {
    const client = await SmtpTestClient.connect(relay.port);
    await client.read();
    await client.command('EHLO client.example');
    await client.command('MAIL FROM:<a@example.com>');
    await client.command('RCPT TO:<b@example.org>');
    assert.equal((await client.command('DATA')).code, 354);
    const line = `${'clean figures, line after line '.repeat(2)}\r\n`;
    client.write(`Subject: in flight\r\nMessage-ID: <in-flight@test>\r\n\r\n${line.repeat(20_000)}`);
    // the live scan is streaming the message to A: A hangs now
    await new Promise((r) => setTimeout(r, 300));
    a.stall();
    client.write(`${line.repeat(20_000)}.\r\n`);
    const reply = await client.read();
    client.end();
    assert.equal(reply.code, 250, `${reply.code} ${reply.lines.join(' ')}`);
    assert.equal(sink.messages.length, 1);
  });
});
