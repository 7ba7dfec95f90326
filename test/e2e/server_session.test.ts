// The mirrored server session when the server or the client does something
// awkward around the message (found by the interop and attack reviews of the
// timeout work): an AUTH exchange whose server session is lost, a server that
// keeps its transaction open after refusing at end of data (Postfix's
// smtpd_end_of_data_restrictions), a 421 at end of data, a server that times
// out an idle transaction while the relay scans, a client that leaves while
// the server has not answered yet, a message Haraka itself refuses, and a
// short scan timeout with a hung clamd among two.

import assert from 'node:assert/strict';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { PostfixServer, startPostfixServer } from '../support/postfix_server';
import { eventually } from '../support/processes';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { reply, ScriptedServer } from '../support/scripted_server';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function relayFor(serverPort: number, clamdSocket: string, smtp: Record<string, string | number> = {}): Promise<Relay> {
  const port = await freePort();
  return startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort, clamdSocket, smtp }))], port);
}

async function session(relay: Relay): Promise<SmtpTestClient> {
  const client = await SmtpTestClient.connect(relay.port);
  await client.read();
  assert.equal((await client.command('EHLO client.example')).code, 250);
  return client;
}

/** The summary line of one message, once written. */
async function summaryOf(relay: Relay, messageId: string, ms = 10_000): Promise<string> {
  const find = (): string | undefined => relay.output().split('\n').find((l) => l.includes(`message_id="<${messageId}>"`));
  await eventually(() => find() !== undefined, ms);
  const line = find();
  assert.ok(line, `no summary line for ${messageId}:\n${relay.output().slice(-3000)}`);
  return line;
}

describe('the server session around the message', function () {
  this.timeout(90_000);
  let clamd: Clamd;
  before(async () => { clamd = await startClamd(); });
  after(() => clamd?.stop());

  it('an AUTH exchange whose server session is lost ends there: its next line never reaches a new session', async () => {
    const scripted = new ScriptedServer({ auth: { user: 'u', password: 'p' } });
    await scripted.start();
    const relay = await relayFor(scripted.port, clamd.socket, { server_trusts_relay: 'no' });
    try {
      const client = await session(relay);
      assert.equal((await client.command('AUTH LOGIN')).code, 334);
      await scripted.down();
      await scripted.up();
      scripted.reset();
      const next = await client.command('c2VjcmV0LWxpbmU=');
      assert.ok(next.code >= 400 && next.code < 500, `${next.code} ${next.lines.join(' ')}`);
      // the session goes on with a new server session, which never saw the line
      assert.equal((await client.command('NOOP')).code, 250);
      assert.ok(!scripted.commands().some((c) => c.includes('c2VjcmV0')), scripted.commands().join(' / '));
      client.end();
    } finally {
      await relay.stop();
      await scripted.stop();
    }
  });

  it('a 421 from the server at end of data is passed on and closes the client session', async () => {
    const scripted = new ScriptedServer({ endOfData: reply(421, '4.3.2 System shutting down') });
    await scripted.start();
    const relay = await relayFor(scripted.port, clamd.socket, { server_trusts_relay: 'no' });
    try {
      const client = await session(relay);
      const { data } = await client.send('a@example.com', ['b@example.org'], 'Subject: x\r\n\r\nhello\r\n');
      assert.equal(data?.code, 421);
      assert.match(data!.lines.join(' '), /4\.3\.2 System shutting down/);
      assert.ok(await eventually(() => client.closed), 'the client session stays open after a 421');
    } finally {
      await relay.stop();
      await scripted.stop();
    }
  });

  describe('with a real Postfix as the server', () => {
    let sink: Sink;
    let postfix: PostfixServer;
    before(async () => {
      sink = new Sink();
      await sink.start();
      postfix = await startPostfixServer({
        deliverTo: sink.port,
        main: {
          // a rate limit at end of data, as a policy service would give it
          smtpd_end_of_data_restrictions: 'check_sender_access inline:{ { defer@example.com = 451 4.7.1 Try again later } }',
          // a server that drops an idle client sooner than its default 300 s, later than the relay's 30 s NOOPs
          smtpd_timeout: '35s',
        },
      });
    });
    after(async () => {
      await postfix?.stop();
      await sink?.stop();
    });

    it('after a refusal at end of data, the next message of the session goes through (RSET first, as Postfix does)', async () => {
      const relay = await relayFor(postfix.port, clamd.socket);
      try {
        const client = await session(relay);
        const deferred = await client.send('defer@example.com', ['user@example.org'], 'Subject: one\r\n\r\nhello\r\n');
        assert.equal(deferred.data?.code, 451, `${deferred.data?.code} ${deferred.data?.lines.join(' ')}`);
        const mark = postfix.mark();
        const next = await client.send(
          'other@example.com', ['user@example.org'], 'Subject: two\r\nMessage-ID: <two@session.test>\r\n\r\nhello\r\n',
        );
        assert.equal(next.mail.code, 250, `MAIL after a refusal at end of data: ${next.mail.code} ${next.mail.lines.join(' ')}`);
        assert.equal(next.data?.code, 250);
        await client.command('QUIT');
        await postfix.settle();
        assert.doesNotMatch(postfix.logSince(mark), /nested MAIL command/);
        assert.ok(sink.messages.some((m) => m.data.toString().includes('<two@session.test>')));
      } finally {
        await relay.stop();
      }
    });

    it('a client slower than the server\'s idle timeout between RCPT and the end of data: '
      + 'the server session is kept alive (NOOP)', async () => {
      const relay = await relayFor(postfix.port, clamd.socket, { timeout_client: 60 });
      try {
        const client = await session(relay);
        assert.equal((await client.command('MAIL FROM:<slow@example.com>')).code, 250);
        assert.equal((await client.command('RCPT TO:<user@example.org>')).code, 250);
        assert.equal((await client.command('DATA')).code, 354);
        const socket = (client as unknown as { socket: import('node:net').Socket }).socket;
        socket.write('Subject: slow\r\nMessage-ID: <slow@session.test>\r\n\r\nfirst\r\n');
        // longer than the server's smtpd_timeout, the client still within timeout_client (the relay's NOOP comes at 30 s)
        await sleep(45_000);
        socket.write('second\r\n.\r\n');
        const end = await client.read();
        assert.equal(end.code, 250, `${end.code} ${end.lines.join(' ')}`);
        await client.command('QUIT');
        await postfix.settle();
        assert.ok(sink.messages.some((m) => m.data.toString().includes('<slow@session.test>')));
      } finally {
        await relay.stop();
      }
    });
  });

  it('a client that leaves before the server answered: the summary waits for the server and says it took the message', async () => {
    const sink = new Sink({ dataDelayMs: 3_000 });
    await sink.start();
    const relay = await relayFor(sink.port, clamd.socket);
    try {
      const client = await session(relay);
      assert.equal((await client.command('MAIL FROM:<a@example.com>')).code, 250);
      assert.equal((await client.command('RCPT TO:<b@example.org>')).code, 250);
      assert.equal((await client.command('DATA')).code, 354);
      const socket = (client as unknown as { socket: import('node:net').Socket }).socket;
      socket.write('Subject: gone\r\nMessage-ID: <gone@session.test>\r\n\r\nhello\r\n.\r\n');
      await sleep(1_000);
      client.destroy();
      const summary = await summaryOf(relay, 'gone@session.test');
      assert.ok(sink.messages.length === 1, 'the server took it');
      // the server's answer is logged although the client left before it
      assert.match(summary, / server=accepted server_reply="250 [^"]*"( queue_id="[^"]*")? reply=none /);
    } finally {
      await relay.stop();
      await sink.stop();
    }
  });

  it('a message Haraka itself refuses at the end of DATA (a Received: loop) gets a summary line with that answer', async () => {
    const sink = new Sink();
    await sink.start();
    const relay = await relayFor(sink.port, clamd.socket);
    try {
      const client = await session(relay);
      const received = Array.from(
        { length: 101 }, (_, i) => `Received: from hop${i}.example by hop${i + 1}.example; Tue, 24 Nov 2026 10:00:00 +0000\r\n`,
      ).join('');
      const { data } = await client.send(
        'a@example.com', ['b@example.org'], `${received}Subject: loop\r\nMessage-ID: <loop@session.test>\r\n\r\nhello\r\n`,
      );
      assert.equal(data?.code, 550);
      client.end();
      const summary = await summaryOf(relay, 'loop@session.test');
      assert.match(summary, /^.*action=reject by=haraka .* reply="550 [^"]*"/);
      assert.equal(sink.messages.length, 0);
    } finally {
      await relay.stop();
      await sink.stop();
    }
  });

  it('two clamd, the first hung, a scan timeout shorter than the hang probe: messages go on through the second', async () => {
    const hung = await startClamd();
    hung.stall();
    const sink = new Sink();
    await sink.start();
    const relay = await relayFor(sink.port, `${hung.socket}, ${clamd.socket}`, { av_scan_obj_timeout: 2 });
    try {
      const codes: number[] = [];
      for (const body of ['hello', EICAR, 'hello again']) {
        const client = await session(relay);
        const { data } = await client.send('a@example.com', ['b@example.org'], `Subject: t\r\n\r\n${body}\r\n`);
        codes.push(data!.code);
        client.end();
      }
      assert.deepEqual(codes, [250, 550, 250], 'the hung daemon decided instead of the one that answers');
      assert.equal(sink.messages.length, 2);
      // the failover is said, once for the back-off period, at warning level
      const said = relay.output().split('\n')
        .filter((l) => /clamd .* failed \(.*\) scanning trace=[0-9A-F-]+\.1: other daemons are tried first for 30 s/.test(l));
      assert.equal(said.length, 1, relay.output().slice(-3000));
      assert.match(said[0], /\[WARN\]/);
    } finally {
      await relay.stop();
      await sink.stop();
      await hung.stop();
    }
  });
});
