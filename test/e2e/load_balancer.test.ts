// Behind a TCP load balancer: a real HAProxy pair (two balancer addresses,
// both sending the PROXY protocol) in front of the relay, and a real Postfix
// as the mail server that lets only its own network (127.0.0.1) relay and
// authorizes XCLIENT for the relay. With proxy_hosts listing both balancers,
// the server judges the real client: an outside client cannot relay, an inside
// one can, and neither looks like the balancer. Nobody else may send PROXY.

import assert from 'node:assert/strict';
import { Clamd, startClamd } from '../support/clamd';
import { DnsServer, startDnsServer } from '../support/dns';
import { HaproxyInstance, startHaproxy } from '../support/haproxy';
import { PostfixServer, startPostfixServer } from '../support/postfix_server';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { eventually } from '../support/processes';
import { linesOf, relayReplyTrace } from '../support/relay_reply';

const BALANCERS = ['127.0.0.2', '127.0.0.3'];
const INSIDE = '127.0.0.1';
const OUTSIDE = '127.0.0.5';

describe('behind a TCP load balancer (HAProxy, PROXY protocol, proxy_hosts)', function () {
  this.timeout(90_000);
  let dns: DnsServer;
  let clamd: Clamd;
  let sink: Sink;
  let postfix: PostfixServer;
  let relay: Relay;
  let haproxy: HaproxyInstance;
  const clients: SmtpTestClient[] = [];

  before(async () => {
    dns = await startDnsServer({});
    sink = new Sink();
    await sink.start();
    [clamd, postfix] = await Promise.all([startClamd(), startPostfixServer({ deliverTo: sink.port })]);
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, {
      serverPort: postfix.port, clamdSocket: clamd.socket, smtp: { proxy_hosts: `"${BALANCERS.join(', ')}"` },
    }));
    relay = await startRelay(['--config', cfg], port, {}, dns.wrap);
    haproxy = await startHaproxy(relay.port, BALANCERS);
  });

  after(async () => {
    await haproxy?.stop();
    await relay?.stop();
    await postfix?.stop();
    await clamd?.stop();
    await sink?.stop();
    await dns?.stop();
  });

  afterEach(() => {
    for (const c of clients.splice(0)) if (!c.closed) c.destroy();
    sink.messages.length = 0;
  });

  async function through(balancer: number, from: string): Promise<SmtpTestClient> {
    const client = await SmtpTestClient.connect(haproxy.balancers[balancer].port, from);
    clients.push(client);
    const greeting = await client.read();
    assert.equal(greeting.code, 220, `greeting through balancer ${balancer}: ${greeting.code} ${greeting.lines.join(' ')}`);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    return client;
  }

  function deliveredFor(messageId: string): string | undefined {
    return sink.messages.map((m) => m.data.toString()).find((d) => d.includes(messageId));
  }

  it('an inside client relays through either balancer, and the server sees its own address, not a balancer', async () => {
    for (const balancer of [0, 1]) {
      const client = await through(balancer, INSIDE);
      const id = `<inside-${balancer}@lb.test>`;
      const r = await client.send('a@inside.test', ['someone@foreign.test'], `Subject: inside\r\nMessage-ID: ${id}\r\n\r\nhello\r\n`);
      assert.equal(r.rcpts[0].code, 250, `RCPT: ${r.rcpts[0].code} ${r.rcpts[0].lines.join(' ')}`);
      assert.equal(r.data?.code, 250);
      assert.equal((await client.command('QUIT')).code, 221);
      await postfix.settle();
      const message = deliveredFor(id);
      assert.ok(message, 'not delivered');
      // (its name: unknown, or the dotless name /etc/hosts gives 127.0.0.1, confirmed as Postfix would)
      assert.match(message, new RegExp(`Received: from client\\.example \\([\\w-]+ \\[${INSIDE.replace(/\./g, '\\.')}\\]\\)`));
      for (const b of BALANCERS) assert.ok(!message.includes(`[${b}]`), `the server saw balancer ${b}`);
    }
  });

  it('an outside client cannot relay to a foreign domain; its mail for the server\'s own domains arrives with its address', async () => {
    const client = await through(1, OUTSIDE);
    const refused = await client.send('x@outside.test', ['victim@foreign.test'], 'Subject: relay attempt\r\n\r\nspam\r\n');
    assert.equal(refused.rcpts[0].code, 554, `RCPT: ${refused.rcpts[0].code} ${refused.rcpts[0].lines.join(' ')}`);
    assert.match(refused.rcpts[0].lines.join(' '), /Relay access denied/);
    // the transaction is still open (a MAIL now would be a nested MAIL, as with Postfix directly)
    assert.equal((await client.command('RSET')).code, 250);
    const id = '<outside-local@lb.test>';
    const ok = await client.send('x@outside.test', ['user@example.org'], `Subject: local\r\nMessage-ID: ${id}\r\n\r\nhello\r\n`);
    assert.equal(ok.data?.code, 250);
    assert.equal((await client.command('QUIT')).code, 221);
    await postfix.settle();
    assert.match(deliveredFor(id) ?? '', /Received: from client\.example \(unknown \[127\.0\.0\.5\]\)/);
    assert.ok(!sink.messages.some((m) => m.to.includes('victim@foreign.test')), 'relayed for an outside client');
  });

  it('a client behind the balancer cannot send PROXY again (it would name itself an inside client)', async () => {
    const client = await through(0, OUTSIDE);
    (client as unknown as { socket: import('node:net').Socket }).socket.write(`PROXY TCP4 ${INSIDE} 127.0.0.1 40000 25\r\n`);
    const reply = await client.read();
    assert.equal(reply.code, 421, `${reply.code} ${reply.lines.join(' ')}`);
    assert.match(reply.lines.join(' '), /PROXY not allowed/);
    assert.ok(!sink.messages.length);
  });

  // (an IPv6 client goes as ADDR=IPV6:..., test/plugins/downstream_session.test.ts: this Postfix runs IPv4 only)
  it('an IPv4 client a dual-stack balancer names as IPv4-mapped IPv6 reaches the server as its IPv4 address', async () => {
    for (const [addr, seen] of [['::ffff:127.0.0.7', '127.0.0.7']]) {
      // straight from a balancer's address, as HAProxy would send it for a client on an IPv6 or dual-stack bind
      const client = await SmtpTestClient.connect(relay.port, BALANCERS[0]);
      clients.push(client);
      (client as unknown as { socket: import('node:net').Socket }).socket.write(`PROXY TCP6 ${addr} ::1 40000 25\r\n`);
      const greeting = await client.read();
      assert.equal(greeting.code, 220, `${addr}: ${greeting.code} ${greeting.lines.join(' ')}`);
      assert.equal((await client.command('EHLO client.example')).code, 250);
      const id = `<v6-${seen.replace(/\W/g, '')}@lb.test>`;
      const r = await client.send('x@outside.test', ['user@example.org'], `Subject: v6\r\nMessage-ID: ${id}\r\n\r\nhello\r\n`);
      assert.equal(r.data?.code, 250);
      assert.equal((await client.command('QUIT')).code, 221);
      await postfix.settle();
      assert.ok((deliveredFor(id) ?? '').includes(`[${seen}]`), `${addr}: ${deliveredFor(id)}`);
    }
  });

  it('a client that is not a balancer cannot send PROXY: refused 421 before any server session is opened', async () => {
    await postfix.settle();
    const mark = postfix.mark();
    const client = await SmtpTestClient.connect(relay.port, OUTSIDE);
    clients.push(client);
    (client as unknown as { socket: import('node:net').Socket }).socket.write(`PROXY TCP4 ${INSIDE} 127.0.0.1 40000 25\r\n`);
    // the first reply: no greeting of the server's comes before it
    const reply = await client.read();
    assert.equal(reply.code, 421, `${reply.code} ${reply.lines.join(' ')}`);
    // the reply names no address (the client knows its own); the log line of its trace id does
    const trace = relayReplyTrace(reply.lines.join(' '), /^4\.7\.0 PROXY not allowed from this address, connect without it$/);
    assert.ok(await eventually(() => linesOf(relay.output(), trace).some((l) => /PROXY refused from 127\.0\.0\.5/.test(l)), 10_000),
      relay.output());
    await assert.rejects(client.read(), /connection closed/);
    // a later session shows the server's log is current; the refused one never reached it
    const later = await SmtpTestClient.connect(relay.port, INSIDE);
    clients.push(later);
    assert.equal((await later.read()).code, 220);
    assert.equal((await later.command('QUIT')).code, 221);
    await postfix.settle();
    const log = postfix.logSince(mark);
    assert.equal((log.match(/ postfix\/smtpd\[\d+\]: connect from /g) ?? []).length, 1, log);
    assert.ok(!log.includes('127.0.0.5'), log);
  });

  for (const [name, header, from] of [
    ['lower case, from an address whose name lookup is fast', 'proxy TCP4 127.0.0.1 127.0.0.1 40000 25\r\n', INSIDE],
    ['version 2 (binary)', '\r\n\r\n\0\r\nQUIT\n!\x11\0\x0c\x7f\0\0\x01\x7f\0\0\x01\x9c\x40\0\x19', OUTSIDE],
    ['version 1 with EHLO pipelined after it', `PROXY TCP4 ${INSIDE} 127.0.0.1 40000 25\r\nEHLO x.example\r\n`, INSIDE],
  ] as const) {
    it(`a PROXY header from a client that is not a balancer, ${name}: 421 before any greeting of the server's`, async () => {
      const client = await SmtpTestClient.connect(relay.port, from);
      clients.push(client);
      (client as unknown as { socket: import('node:net').Socket }).socket.write(Buffer.from(header, 'latin1'));
      const reply = await client.read();
      assert.equal(reply.code, 421, `${reply.code} ${reply.lines.join(' ')}`);
      const trace = relayReplyTrace(reply.lines.join(' '), /^4\.7\.0 PROXY not allowed from this address, connect without it$/);
      const logged = new RegExp(`PROXY refused from ${from.replace(/\./g, '\\.')}`);
      assert.ok(await eventually(() => linesOf(relay.output(), trace).some((l) => logged.test(l)), 10_000), relay.output());
      await assert.rejects(client.read(), /connection closed/);
      assert.ok(!sink.messages.length);
    });
  }
});
