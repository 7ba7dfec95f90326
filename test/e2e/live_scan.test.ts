// The relay streams each message to clamd while the client is still sending
// it (esets_policy's live scan), and sends nothing of it to the mail server
// before the verdict: seen through a recording proxy in front of a real clamd
// that can also hold clamd's replies.

import assert from 'node:assert/strict';
import { eventually } from '../support/processes';
import net from 'node:net';
import path from 'node:path';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';

interface Recorded { bytes: number; instream: boolean }

describe('live scan: the message reaches clamd during DATA', function () {
  this.timeout(60_000);
  let clamd: Clamd;
  let sink: Sink;
  let relay: Relay;
  let proxy: net.Server;
  const connections: Recorded[] = [];
  /** while set, clamd's replies wait in the proxy */
  let held: (() => void)[] | undefined;

  before(async () => {
    clamd = await startClamd();
    const proxyPath = path.join(clamd.dir, 'proxy.sock');
    proxy = net.createServer((client) => {
      const seen: Recorded = { bytes: 0, instream: false };
      connections.push(seen);
      const upstream = net.connect(clamd.socket);
      client.on('data', (d) => {
        seen.instream ||= d.includes('zINSTREAM\0');
        seen.bytes += d.length;
        upstream.write(d);
      });
      upstream.on('data', (d) => (held ? held.push(() => client.write(d)) : client.write(d)));
      client.on('end', () => upstream.end());
      upstream.on('end', () => (held ? held.push(() => client.end()) : client.end()));
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((r) => proxy.listen(proxyPath, r));
    sink = new Sink();
    await sink.start();
    const port = await freePort();
    relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: proxyPath }))], port);
  });

  after(async () => {
    await relay?.stop();
    await new Promise((r) => proxy?.close(r));
    await sink?.stop();
    await clamd?.stop();
  });

  /** A client in DATA (354 received) for one message to user@example.org. */
  async function clientInData(): Promise<SmtpTestClient> {
    const client = await SmtpTestClient.connect(relay.port);
    await client.read();
    await client.command('EHLO client.example');
    await client.command('MAIL FROM:<a@example.com>');
    await client.command('RCPT TO:<user@example.org>');
    assert.equal((await client.command('DATA')).code, 354);
    return client;
  }

  /** `atPause`: bytes at clamd (for this message) while the client waits with half of it sent */
  async function sendInTwoHalves(body: string): Promise<{ code: number; atPause: number }> {
    const earlier = connections.length;
    const client = await clientInData();
    const half = Math.floor(body.length / 2);
    client.write(body.slice(0, half));
    await new Promise((r) => setTimeout(r, 700));
    const scan = connections.slice(earlier).find((c) => c.instream);
    const atPause = scan?.bytes ?? 0;
    client.write(`${body.slice(half)}.\r\n`);
    const reply = await client.read();
    client.end();
    return { code: reply.code, atPause };
  }

  it('has half of a 1 MB message at clamd before the client sends the rest, and delivers it', async () => {
    const before = sink.messages.length;
    const body = `Subject: live\r\n\r\n${'A line of a long report, streamed to clamd as it comes.\r\n'.repeat(19000)}`;
    const { code, atPause } = await sendInTwoHalves(body);
    assert.equal(code, 250);
    // all but the last batch (64 KiB) of the first half
    assert.ok(atPause >= body.length / 2 - 65536, `clamd had ${atPause} of ${body.length} bytes while the client paused`);
    assert.equal(sink.messages.length, before + 1);
    assert.match(sink.messages[before].data.toString(), /^X-Virus-Scanner: .*; clean/m);
  });

  it('rejects EICAR sent the same way: the server gets no message', async () => {
    const before = sink.messages.length;
    const body = `Subject: eicar\r\n\r\n${'filler line before the test file\r\n'.repeat(20000)}${EICAR}\r\n`;
    const { code, atPause } = await sendInTwoHalves(body);
    assert.equal(code, 550);
    assert.ok(atPause >= body.length / 2 - 65536, `clamd had ${atPause} of ${body.length} bytes while the client paused`);
    assert.equal(sink.messages.length, before);
  });

  it('sends the mail server nothing of a message before the verdict: clean is delivered after it, EICAR never', async () => {
    const client = await SmtpTestClient.connect(relay.port);
    await client.read();
    await client.command('EHLO client.example');
    for (const [kind, body] of [
      ['clean', `Subject: held clean\r\n\r\n${'Figures for the archive, line after line.\r\n'.repeat(5000)}`],
      ['infected', `Subject: held eicar\r\n\r\n${'Figures for the archive, line after line.\r\n'.repeat(5000)}${EICAR}\r\n`],
      ['clean again, same client session', `Subject: after a rejected one\r\n\r\n${'More figures.\r\n'.repeat(5000)}`],
    ] as const) {
      const messagesBefore = sink.messages.length;
      const bytesBefore = sink.dataBytes;
      const scansBefore = connections.length;
      held = [];
      const reply = client.send('a@example.com', ['user@example.org'], body);
      // clamd has the whole message and its verdict is held
      assert.ok(
        await eventually(() => connections.slice(scansBefore).some((c) => c.instream && c.bytes >= body.length), 10_000),
        `${kind}: clamd got the message`,
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(sink.dataBytes, bytesBefore, `${kind}: message bytes reached the server before the verdict`);
      const release = held;
      held = undefined;
      for (const write of release) write();
      const { data } = await reply;
      if (kind === 'infected') {
        assert.equal(data?.code, 550);
        assert.equal(sink.dataBytes, bytesBefore, 'bytes of the infected message reached the server');
        assert.equal(sink.messages.length, messagesBefore, 'the infected message was delivered');
      } else {
        assert.equal(data?.code, 250, `${kind}: ${data?.lines.join(' ')}`);
        assert.equal(sink.messages.length, messagesBefore + 1);
        const got = sink.messages[messagesBefore].data.toString();
        assert.match(got, /^X-Virus-Scanner: .*; clean\r$/m);
        assert.equal(got.split('\r\n\r\n')[1], body.split('\r\n\r\n')[1]);
      }
    }
    client.end();
  });

  it('leaves no clamd connection open after a client that quits mid-DATA', async () => {
    const client = await clientInData();
    client.write('Subject: cut\r\n\r\nhalf a message\r\n');
    await new Promise((r) => setTimeout(r, 300));
    const open = (): Promise<number> => new Promise((r) => proxy.getConnections((_e, n) => r(n)));
    assert.equal(await open(), 1, 'the live scan connection while DATA runs');
    client.destroy();
    const deadline = Date.now() + 5000;
    while ((await open()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await open(), 0);
  });
});
