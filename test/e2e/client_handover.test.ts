// How the relay hands its client over to a real Postfix 3.7 (issue 24), each
// against a direct session with the same Postfix: a client that authenticated
// is told 421 to authenticate again when the relay must reopen the server
// session (Postfix closed it idle: smtpd_timeout), as Postfix tells it
// directly, never carried on unauthenticated or as a guessed name (no XCLIENT
// LOGIN, even where the server offers it); XCLIENT carries the
// client's port and the address and port it connected to; a client name
// without a dot goes as NAME, as Postfix itself would have it; an IPv6 client
// with a server that reads IPv4 only is an error log naming inet_protocols.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import dns from 'node:dns';
import { Clamd, startClamd } from '../support/clamd';
import { PostfixServer, smtpdClients, startPostfixServer } from '../support/postfix_server';
import { eventually } from '../support/processes';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { EHLO_POSTFIX_LIKE, ScriptedServer } from '../support/scripted_server';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { Tap } from '../support/tap';

const OUTSIDE = '127.0.0.2';
const USER = 'alice';
const PASSWORD = 'Secret-Pass-24';
const PLAIN = Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64');
/** Postfix closes an idle session after this long (its smtpd_timeout) */
const IDLE_S = 2;

/** Whether some socket on this host to 127.0.0.1:`port` is in CLOSE_WAIT (its peer closed, it has not yet). */
function halfClosedTo(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).some((row) => {
    const f = row.trim().split(/\s+/);
    // remote address, then the state: 08 is CLOSE_WAIT
    return f[2] === `0100007F:${hex}` && f[3] === '08';
  });
}
const show = (r: { code: number; lines: string[] }): string => `${r.code} ${r.lines.join(' / ')}`;

async function relayFor(serverPort: number, clamdSocket: string, smtp: Record<string, string | number> = {}): Promise<Relay> {
  const port = await freePort();
  return startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort, clamdSocket, smtp }))], port);
}

async function session(port: number, localAddress = OUTSIDE, host?: string): Promise<SmtpTestClient> {
  const client = await SmtpTestClient.connect(port, localAddress, host);
  const greeting = await client.read();
  assert.equal(greeting.code, 220, show(greeting));
  assert.equal((await client.command('EHLO client.example')).code, 250);
  return client;
}

describe('the client handed over to a real Postfix (XCLIENT)', function () {
  this.timeout(120_000);
  let clamd: Clamd;
  let sink: Sink;
  let postfix: PostfixServer;
  before(async () => {
    clamd = await startClamd();
    sink = new Sink();
    await sink.start();
    postfix = await startPostfixServer({
      deliverTo: sink.port,
      sasl: { [USER]: PASSWORD },
      main: { smtpd_timeout: `${IDLE_S}s`, smtpd_client_port_logging: 'yes' },
    });
  });
  after(async () => {
    await postfix?.stop();
    await sink?.stop();
    await clamd?.stop();
  });

  describe('AUTH across a reopened server session', () => {
    it('authenticated, its session closed idle by Postfix: told 421 as directly; authenticated again, it relays', async () => {
      // directly: not authenticated, Relay access denied; authenticated, the client may relay; idle, Postfix says 421
      const direct = await session(postfix.port);
      const refused = await direct.send('a@client.example', ['user@elsewhere.example'], 'Subject: x\r\n\r\nx\r\n');
      assert.equal(refused.rcpts[0].code, 554, show(refused.rcpts[0]));
      assert.equal((await direct.command('RSET')).code, 250);
      const directAuth = await direct.command(`AUTH PLAIN ${PLAIN}`);
      assert.equal(directAuth.code, 235, show(directAuth));
      assert.equal((await direct.command('MAIL FROM:<a@client.example>')).code, 250);
      const directRcpt = await direct.command('RCPT TO:<user@elsewhere.example>');
      assert.equal(directRcpt.code, 250, show(directRcpt));
      const directIdle = await direct.read((IDLE_S + 10) * 1000);
      assert.equal(directIdle.code, 421, `directly, an idle session: ${show(directIdle)}`);

      const relay = await relayFor(postfix.port, clamd.socket, { syslog_class: '"error:warning:summary:info"' });
      try {
        const client = await session(relay.port);
        const auth = await client.command(`AUTH PLAIN ${PLAIN}`);
        assert.deepEqual(auth, directAuth, 'the 235 is the server\'s');
        const mark = postfix.mark();
        // Postfix times the idle session out (421 4.4.2 ... timeout exceeded) and closes it
        await eventually(() => /timeout after AUTH from/.test(postfix.logSince(mark)), (IDLE_S + 10) * 1000);
        assert.ok(await eventually(() => !halfClosedTo(postfix.port), 10_000), 'the relay never closed its side');
        const mail = await client.command('MAIL FROM:<a@client.example>');
        assert.equal(mail.code, 421, show(mail));
        assert.match(mail.lines.join(' '), /^4\.7\.0 .*authenticate again/);
        assert.ok(await eventually(() => client.closed), 'the client session stays open after the 421');
        assert.ok(await eventually(() => /session reopened \(the server had closed it\): the client had authenticated/.test(relay.output()), 5000));
        // the client does what it would directly: a new session, AUTH again; it relays as directly
        const again = await session(relay.port);
        assert.equal((await again.command(`AUTH PLAIN ${PLAIN}`)).code, 235);
        const sent = await again.send(
          'a@client.example', ['user@elsewhere.example'],
          'Subject: after the reopen\r\nMessage-ID: <reopen@handover.test>\r\n\r\nhello\r\n',
        );
        assert.deepEqual(sent.rcpts[0], directRcpt, `the relayed recipient as directly: ${show(sent.rcpts[0])}`);
        assert.equal(sent.data?.code, 250, show(sent.data ?? { code: 0, lines: [] }));
        await again.command('QUIT');
        await postfix.settle();
        const log = postfix.logSince(mark);
        assert.match(log, new RegExp(`client=unknown\\[${OUTSIDE.replace(/\./g, '\\.')}\\]:\\d+, sasl_method=PLAIN, sasl_username=${USER}`), log);
        assert.doesNotMatch(log, /sasl_method=XCLIENT/);
        assert.equal(sink.messages.filter((m) => m.data.includes('<reopen@handover.test>')).length, 1, 'delivered once');
        // no credential in the relay's log
        assert.ok(!relay.output().includes(PASSWORD) && !relay.output().includes(PLAIN), 'a credential in the log');
      } finally {
        await relay.stop();
      }
    });
  });

  describe('XCLIENT attributes', () => {
    it("PORT, DESTADDR and DESTPORT: Postfix logs the client's own port, as directly", async () => {
      const tap = new Tap(postfix.port);
      await tap.start();
      const relay = await relayFor(tap.port, clamd.socket);
      try {
        const mark = postfix.mark();
        const direct = await session(postfix.port);
        const directPort = direct.localPort;
        await direct.command('QUIT');
        const client = await session(relay.port);
        const clientPort = client.localPort;
        const { data } = await client.send('a@client.example', ['user@example.org'], 'Subject: port\r\n\r\nhello\r\n');
        assert.equal(data?.code, 250);
        await client.command('QUIT');
        await postfix.settle();
        const log = postfix.logSince(mark);
        assert.ok(log.includes(`connect from unknown[${OUTSIDE}]:${directPort}`), log);
        assert.ok(log.includes(`client=unknown[${OUTSIDE}]:${clientPort}`), `Postfix logs the relay's client port:\n${log}`);
        // (the relay's start-up probe connected from 127.0.0.1 first)
        const xclient = tap.commands().find((c) => c.startsWith(`XCLIENT ADDR=${OUTSIDE} `));
        assert.equal(xclient, `XCLIENT ADDR=${OUTSIDE} NAME=[UNAVAILABLE] `
          + `PORT=${clientPort} DESTADDR=127.0.0.1 DESTPORT=${relay.port}`);
        assert.ok(!/Bad \w+ syntax/.test(log), log);
      } finally {
        await relay.stop();
        await tap.stop();
      }
    });

    it('a client name without a dot that resolves back (from /etc/hosts) goes as NAME, where Postfix itself would log it', async () => {
      // the name Haraka reads for 127.0.0.1 (c-ares: /etc/hosts), as the relay confirms it
      const [ptr] = await dns.promises.reverse('127.0.0.1').catch(() => [] as string[]);
      const back = ptr ? await dns.promises.lookup(ptr, { all: true }).catch(() => []) : [];
      assert.ok(ptr && !ptr.includes('.') && back.some((a) => a.address === '127.0.0.1'),
        `this test needs a dotless name for 127.0.0.1 in /etc/hosts (PTR ${ptr})`);
      const relay = await relayFor(postfix.port, clamd.socket);
      try {
        const mark = postfix.mark();
        const client = await session(relay.port, '127.0.0.1');
        const { data } = await client.send('a@client.example', ['user@example.org'], 'Subject: name\r\n\r\nhello\r\n');
        assert.equal(data?.code, 250);
        await client.command('QUIT');
        await postfix.settle();
        const log = postfix.logSince(mark);
        assert.ok(smtpdClients(log).includes(`${ptr}[127.0.0.1]`), log);
      } finally {
        await relay.stop();
      }
    });

    it("an IPv6 client with Postfix on IPv4 only (inet_protocols = ipv4): 421, and the error log names inet_protocols", async () => {
      const port = await freePort();
      const relay = await startRelay(
        ['--config', writeEsetsCfg(esetsCfg(port, { serverPort: postfix.port, clamdSocket: clamd.socket, smtp: { listen_addr: '"::"' } }))],
        port,
      );
      try {
        const client = await SmtpTestClient.connect(port, undefined, '::1');
        const greeting = await client.read();
        assert.equal(greeting.code, 421, show(greeting));
        assert.ok(await eventually(() => /cannot read the client's IPv6 address/.test(relay.output()), 5000), relay.output().slice(-2000));
        const line = relay.output().split('\n').find((l) => l.includes("cannot read the client's IPv6 address"))!;
        assert.match(line, /Bad ADDR syntax: IPV6:::1/);
        assert.match(line, /inet_protocols = all/);
        assert.doesNotMatch(line, /smtpd_authorized_xclient_hosts/);
      } finally {
        await relay.stop();
      }
    });
  });
});

describe('AUTH across a reopened session, with a server that offers XCLIENT LOGIN', function () {
  this.timeout(60_000);
  let clamd: Clamd;
  before(async () => { clamd = await startClamd(); });
  after(() => clamd?.stop());

  for (const [what, authLine] of [
    ['AUTH PLAIN', `AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}`],
    ['AUTH PLAIN acting as another identity (authzid)', `AUTH PLAIN ${Buffer.from('other\0u\0p').toString('base64')}`],
  ] as const) {
    it(`${what}: the client gets 421 4.7.0 to authenticate again; the server never sees its command, nor a LOGIN`, async () => {
      const scripted = new ScriptedServer({ auth: { user: 'u', password: 'p' }, ehlo: [...EHLO_POSTFIX_LIKE] });
      await scripted.start();
      const relay = await relayFor(scripted.port, clamd.socket);
      try {
        // a client that never authenticated, beside it: it goes on in its reopened session
        const bystander = await session(relay.port);
        const client = await session(relay.port);
        assert.equal((await client.command(authLine)).code, 235);
        // the server closes the idle session
        await scripted.down();
        await scripted.up();
        scripted.reset();
        // (the relay has seen its server sessions end: none of its sockets to the server is left half-closed)
        assert.ok(await eventually(() => !halfClosedTo(scripted.port), 10_000), 'the relay never closed its side');
        const mail = await client.command('MAIL FROM:<a@client.example>');
        assert.equal(mail.code, 421, show(mail));
        assert.match(mail.lines.join(' '), /^4\.7\.0 .*authenticate again/);
        assert.ok(await eventually(() => client.closed), 'the client session stays open after the 421');
        assert.ok(!scripted.commands().some((c) => /^MAIL/i.test(c)), scripted.commands().join(' / '));
        const other = await bystander.command('MAIL FROM:<b@client.example>');
        assert.equal(other.code, 250, `a client that never authenticated: ${show(other)}`);
        assert.ok(!scripted.commands().some((c) => /\bLOGIN=/.test(c)), scripted.commands().join(' / '));
        bystander.end();
      } finally {
        await relay.stop();
        await scripted.stop();
      }
    });
  }

  it('the server closes the session after the RCPTs: DATA is answered 451 4.4.4 at once, not 354 and then 451', async () => {
    const scripted = new ScriptedServer({ ehlo: [...EHLO_POSTFIX_LIKE] });
    await scripted.start();
    const relay = await relayFor(scripted.port, clamd.socket);
    try {
      const client = await session(relay.port);
      assert.equal((await client.command('MAIL FROM:<a@client.example>')).code, 250);
      assert.equal((await client.command('RCPT TO:<b@example.org>')).code, 250);
      await scripted.down();
      assert.ok(await eventually(() => !halfClosedTo(scripted.port), 10_000), 'the relay never closed its side');
      const data = await client.command('DATA');
      assert.equal(data.code, 451, show(data));
      assert.match(data.lines.join(' '), /^4\.4\.4 /);
      // the client goes on: a new transaction opens a new server session
      await scripted.up();
      const again = await client.send('a@client.example', ['b@example.org'], 'Subject: again\r\n\r\nhello\r\n');
      assert.equal(again.data?.code, 250, show(again.data ?? { code: 0, lines: [] }));
    } finally {
      await relay.stop();
      await scripted.stop();
    }
  });
});
