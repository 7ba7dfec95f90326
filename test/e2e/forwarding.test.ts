// The relay end to end: the esets_smtp launcher running Haraka, a real clamd,
// a real downstream SMTP server, and a raw SMTP client.

import assert from 'node:assert/strict';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { message, SmtpTestClient } from '../support/smtp_client';
import { eventually } from '../support/processes';
import { linesOf, relayReplyTrace } from '../support/relay_reply';

const BODY = [
  'First line of a clean message.',
  '.a line that starts with a dot survives dot-stuffing',
  '..and so does this one',
  '',
  'Trailing spaces stay   ',
  'Last line.',
].join('\r\n');

function splitMessage(data: Buffer): { headers: string; body: string } {
  const text = data.toString('latin1');
  const at = text.indexOf('\r\n\r\n');
  return { headers: text.slice(0, at + 2), body: text.slice(at + 4) };
}

describe('relay end to end (launcher + Haraka + clamd + SMTP server)', function () {
  this.timeout(60_000);
  let clamd: Clamd;
  let sink: Sink;
  let relay: Relay;

  before(async () => {
    clamd = await startClamd();
    // the server relays for its own network only (127.0.0.1) and knows no "nobody"
    sink = new Sink({
      refuseRcpt: (address, session) => {
        if (address.startsWith('nobody@')) return '5.1.1 <nobody> User unknown';
        if (!address.endsWith('@example.org') && session.remoteAddress !== '127.0.0.1') return '5.7.1 Relaying denied';
        return undefined;
      },
    });
    await sink.start();
    const port = await freePort();
    relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket }))], port);
  });

  after(async () => {
    await relay?.stop();
    await sink?.stop();
    await clamd?.stop();
  });

  beforeEach(() => {
    sink.messages.length = 0;
  });

  async function session(localAddress?: string): Promise<SmtpTestClient> {
    const client = await SmtpTestClient.connect(relay.port, localAddress);
    assert.equal((await client.read()).code, 220);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    return client;
  }

  it('forwards a clean message with its body byte-identical, X-Virus-Scanner added and no Received line', async () => {
    const client = await session();
    const msg = message({ From: 'a@example.com', To: 'b@example.org', Subject: 'clean', 'Message-ID': '<clean-1@test>' }, BODY);
    const r = await client.send('a@example.com', ['b@example.org'], msg);
    client.end();
    assert.equal(r.data?.code, 250);
    assert.match(r.data!.lines[0], /Ok: queued as test1/, "the client gets the server's own reply text");
    assert.equal(sink.messages.length, 1);
    const got = sink.messages[0];
    assert.equal(got.from, 'a@example.com');
    assert.deepEqual(got.to, ['b@example.org']);
    const { headers, body } = splitMessage(got.data);
    assert.equal(body, `${BODY}\r\n`);
    assert.match(headers, /^From: a@example\.com\r\nTo: b@example\.org\r\nSubject: clean\r\nMessage-ID: <clean-1@test>\r\n/);
    assert.match(headers, /^X-Virus-Scanner: esets-relay \S+ \(ClamAV [\d.]+.*\); clean\r$/m);
    assert.doesNotMatch(headers, /^Received:/m);
  });

  it("rejects a message with EICAR in the body with 550 5.7.1 naming the virus; the server gets nothing", async () => {
    const client = await session();
    const r = await client.send('a@example.com', ['b@example.org'], message({ Subject: 'eicar' }, `${EICAR}\r\n`));
    client.end();
    assert.equal(r.data?.code, 550);
    const trace = relayReplyTrace(r.data!.lines[0],
      /^5\.7\.1 Message rejected: virus found \(Eicar-Test-Signature[^)]*\), remove it before sending again$/);
    assert.match(trace, /\.1$/, "the transaction's id");
    assert.equal(sink.messages.length, 0);
    // the summary of that message is found by the id the client was told
    const summary = (): boolean => linesOf(relay.output(), trace).some((l) => /action=reject by=action_av_infected/.test(l));
    assert.ok(await eventually(summary, 10_000), relay.output());
  });

  it('rejects EICAR as a base64 attachment', async () => {
    const client = await session();
    const mime = [
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain',
      '',
      'see attachment',
      '--b1',
      'Content-Type: application/octet-stream; name="eicar.com"',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename="eicar.com"',
      '',
      Buffer.from(EICAR).toString('base64'),
      '--b1--',
      '',
    ].join('\r\n');
    const r = await client.send('a@example.com', ['b@example.org'], `Subject: attached\r\n${mime}`);
    client.end();
    assert.equal(r.data?.code, 550);
    assert.equal(sink.messages.length, 0);
  });

  it('refuses at RCPT time a recipient the server refuses, with its code and text, and delivers to the other', async () => {
    const client = await session();
    const r = await client.send('a@example.com', ['good@example.org', 'nobody@example.org'], message({ Subject: 'two' }, 'hi\r\n'));
    client.end();
    assert.equal(r.rcpts[0].code, 250);
    assert.equal(r.rcpts[1].code, 550);
    assert.match(r.rcpts[1].lines[0], /^5\.1\.1 <nobody> User unknown/);
    assert.equal(r.data?.code, 250);
    assert.equal(sink.messages.length, 1);
    assert.deepEqual(sink.messages[0].to, ['good@example.org']);
  });

  it('is not an open relay: the server judges the real client (XCLIENT), so an outside client cannot relay', async () => {
    const outsider = await session('127.0.0.2');
    const refused = await outsider.send('a@example.com', ['someone@elsewhere.test'], message({ Subject: 'relay?' }, 'x\r\n'));
    outsider.end();
    assert.equal(refused.rcpts[0].code, 550);
    assert.match(refused.rcpts[0].lines[0], /Relaying denied/);

    const insider = await session('127.0.0.1');
    const allowed = await insider.send('a@example.com', ['someone@elsewhere.test'], message({ Subject: 'relay' }, 'x\r\n'));
    insider.end();
    assert.equal(allowed.data?.code, 250);
    assert.equal(sink.messages.length, 1);
    assert.equal(sink.messages[0].clientAddress, '127.0.0.1');
  });

  it('carries several transactions over one client session', async () => {
    const client = await session();
    for (let i = 0; i < 3; i++) {
      const r = await client.send('a@example.com', ['b@example.org'], message({ Subject: `n${i}` }, `message ${i}\r\n`));
      assert.equal(r.data?.code, 250);
    }
    // a rejected message in between leaves the server session usable
    assert.equal((await client.send('a@example.com', ['b@example.org'], `Subject: v\r\n\r\n${EICAR}\r\n`)).data?.code, 550);
    assert.equal((await client.send('a@example.com', ['b@example.org'], 'Subject: after\r\n\r\nok\r\n')).data?.code, 250);
    client.end();
    assert.deepEqual(sink.messages.map((m) => splitMessage(m.data).body), ['message 0\r\n', 'message 1\r\n', 'message 2\r\n', 'ok\r\n']);
  });
});

describe('relay end to end: what the mail server answers reaches the client', function () {
  this.timeout(60_000);
  let clamd: Clamd;

  before(async () => {
    clamd = await startClamd();
  });
  after(() => clamd?.stop());

  async function withServer(sink: Sink | undefined, extraArgs: string[], test: (relay: Relay) => Promise<void>): Promise<void> {
    const serverPort = sink ? await sink.start() : await freePort();
    const port = await freePort();
    const relay = await startRelay([
      '--config', writeEsetsCfg(esetsCfg(port, { serverPort, clamdSocket: clamd.socket })), ...extraArgs,
    ], port);
    try {
      await test(relay);
    } finally {
      await relay.stop();
      await sink?.stop();
    }
  }

  it('answers 421 4.4.1 at connect, within 2 s, when the server is down (connection refused) (trace id of the log line)', async () => {
    await withServer(undefined, [], async (relay) => {
      const started = Date.now();
      const client = await SmtpTestClient.connect(relay.port);
      const greeting = await client.read();
      const elapsed = Date.now() - started;
      client.end();
      assert.ok(elapsed < 2000, `took ${elapsed} ms`);
      assert.equal(greeting.code, 421);
      // the connection's trace id, no host or port of the server; the relay's log line of that id has them
      const trace = relayReplyTrace(greeting.lines[0], /^4\.4\.1 Mail server unavailable, try again later$/);
      assert.ok(!trace.includes('.'), `a connection's id, not a transaction's: ${trace}`);
      assert.ok(await eventually(() => linesOf(relay.output(), trace).some((l) => /ECONNREFUSED 127\.0\.0\.1:\d+/.test(l)), 10_000),
        relay.output());
    });
  });

  it("passes the server's 5xx at end of DATA to the client", async () => {
    const sink = new Sink({ dataReply: { code: 554, text: '5.6.0 Content refused by server' } });
    await withServer(sink, [], async (relay) => {
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO client.example');
      const r = await client.send('a@example.com', ['b@example.org'], 'Subject: x\r\n\r\nclean\r\n');
      client.end();
      assert.equal(Math.floor(r.data!.code / 100), 5);
      assert.match(r.data!.lines[0], /Content refused by server/);
    });
  });

  it("passes the server's 4xx at end of DATA to the client (never 250)", async () => {
    const sink = new Sink({ dataReply: { code: 452, text: '4.3.1 Insufficient system storage' } });
    await withServer(sink, [], async (relay) => {
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO client.example');
      const r = await client.send('a@example.com', ['b@example.org'], 'Subject: x\r\n\r\nclean\r\n');
      client.end();
      assert.equal(Math.floor(r.data!.code / 100), 4);
      assert.match(r.data!.lines[0], /Insufficient system storage/);
      assert.equal(sink.messages.length, 0);
    });
  });

  it('gives a message without a header section its header at the top, an empty line after it (the body as sent)', async () => {
    const sink = new Sink();
    await withServer(sink, [], async (relay) => {
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO client.example');
      const body = 'just a body line, no header field\r\nsecond line: not a field either\r\n';
      const r = await client.send('a@example.com', ['b@example.org'], body);
      client.end();
      assert.equal(r.data?.code, 250, r.data?.lines.join(' '));
      const got = sink.messages[0].data.toString('latin1');
      assert.match(got, /^X-Virus-Scanner: esets-relay \S+ \(ClamAV [\d.]+.*\); clean\r\n\r\n/);
      assert.equal(got.slice(got.indexOf('\r\n\r\n') + 4), body);
    });
  });

  it('scans a message without a header section as its readers split it: '
    + 'uuencoded EICAR after a first line that is no field is refused', async () => {
    // clamd, given the client's bytes with no empty line first, took line 2 for a header field (message/rfc822)
    // and did not decode the body; the server's readers (ripmime) take all of it as body and extract EICAR
    const uu = [
      'begin 644 eicar.com', 'M6#5/(5 E0$%06S1<4%I8-30H4%XI-T-#*3=])$5)0T%2+5-404Y$05)$+4%.',
      '75$E625)54RU415-4+49)3$4A)$@K2"H ', '`', 'end',
    ];
    const sink = new Sink();
    await withServer(sink, ['--add-header-received'], async (relay) => {
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO client.example');
      const text = ['garbage TOKEN', 'Content-Type: message/rfc822', '', ...uu, ''].join('\r\n');
      const r = await client.send('a@example.com', ['b@example.org'], text);
      client.end();
      assert.equal(r.data?.code, 550, r.data?.lines.join(' '));
      assert.match(r.data!.lines.join(' '), /5\.7\.1 Message rejected: virus found \(/);
      assert.equal(sink.messages.length, 0);
    });
  });

  it('refuses 550 5.6.0 a first line that continues no field, and a line that is no field after an mbox "From " line '
    + '(Postfix starts the body there: uuencoded EICAR behind them reached ripmime)', async () => {
    const uu = [
      'begin 644 eicar.com', 'M6#5/(5 E0$%06S1<4%I8-30H4%XI-T-#*3=])$5)0T%2+5-404Y$05)$+4%.',
      '75$E625)54RU415-4+49)3$4A)$@K2"H ', '`', 'end',
    ];
    const mbox = 'From x@y Mon Jan  1 00:00:00 2024';
    const firstLines = [[' x'], ['\tx'], [mbox, 'garbage TOKEN'], [mbox, ' x']];
    const sink = new Sink();
    await withServer(sink, [], async (relay) => {
      for (const first of firstLines) {
        const client = await SmtpTestClient.connect(relay.port);
        await client.read();
        await client.command('EHLO client.example');
        const text = [...first, 'Content-Type: message/rfc822', '', ...uu, ''].join('\r\n');
        const r = await client.send('a@example.com', ['b@example.org'], text);
        client.end();
        assert.equal(r.data?.code, 550, `${JSON.stringify(first)}: ${r.data?.lines.join(' ')}`);
        relayReplyTrace(r.data!.lines.join(' '),
          /^5\.6\.0 Message refused: malformed message \(line \d (continues no header field|is not a header field)\b.*\), correct it before sending again$/);
      }
      assert.equal(sink.messages.length, 0);
    });
  });

  it('a headerless message under --add-header-received: the Received line and X-Virus-Scanner on top, then the empty line', async () => {
    const sink = new Sink();
    await withServer(sink, ['--add-header-received'], async (relay) => {
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO client.example');
      const r = await client.send('a@example.com', ['b@example.org'], 'only a body\r\n');
      client.end();
      assert.equal(r.data?.code, 250, r.data?.lines.join(' '));
      const got = sink.messages[0].data.toString('latin1');
      assert.match(got, /^Received: from client\.example [^]*?\r\nX-Virus-Scanner: [^\r]*clean\r\n\r\nonly a body\r\n$/);
    });
  });

  it('adds a Received line with --add-header-received, and no X-Virus-Scanner with --no-add-header-xvirus', async () => {
    const sink = new Sink();
    await withServer(sink, ['--add-header-received', '--no-add-header-xvirus'], async (relay) => {
      const client = await SmtpTestClient.connect(relay.port);
      await client.read();
      await client.command('EHLO client.example');
      const r = await client.send('a@example.com', ['b@example.org'], 'Subject: x\r\n\r\nclean\r\n');
      client.end();
      assert.equal(r.data?.code, 250);
      const { headers } = splitMessage(sink.messages[0].data);
      assert.match(headers, /^Received: from client\.example /m);
      assert.doesNotMatch(headers, /^X-Virus-Scanner:/m);
    });
  });
});
