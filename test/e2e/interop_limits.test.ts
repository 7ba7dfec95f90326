// Limits of commands and addresses as Postfix sets them (issue 24): a VERP or
// SRS bounce address with a local part over RFC 5321's 64 octets, a RCPT whose
// DSN ORCPT makes its line 650 and 1012 characters long (RFC 3461 section 4
// allows 500 more than 512): a real Postfix takes each, and through the relay
// the same Postfix gets the same command and gives the same reply. A line past
// Postfix's own line_length_limit (2048) is where the two part: said in
// docs/transparency.md.

import assert from 'node:assert/strict';
import { Clamd, startClamd } from '../support/clamd';
import { baseMainCf, startPostfixInstance } from '../support/postfix';
import { ScriptedServer, ScriptedSession } from '../support/scripted_server';
import { PostfixServer, startPostfixServer } from '../support/postfix_server';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { message, SmtpTestClient } from '../support/smtp_client';

const VERP = `list-bounces+${'very.long.subscriber.name'.repeat(3)}=subscriber-domain.example.com@lists.example.org`;

/** an ORCPT of xtext that makes `RCPT TO:<to> NOTIFY=... ORCPT=rfc822;...` exactly `length` characters */
function rcptLine(to: string, length: number): string {
  const head = `RCPT TO:<${to}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;`;
  const user = 'o'.repeat(length - head.length - '@example.org'.length);
  return `${head}${user}@example.org`;
}

describe('command and address limits as Postfix has them (real Postfix, direct and through the relay)', function () {
  this.timeout(120_000);
  let clamd: Clamd;
  let sink: Sink;
  let postfix: PostfixServer;
  let relay: Relay;

  before(async () => {
    sink = new Sink();
    await sink.start();
    [clamd, postfix] = await Promise.all([startClamd(), startPostfixServer({ deliverTo: sink.port })]);
    const port = await freePort();
    relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: postfix.port, clamdSocket: clamd.socket }))], port);
  });
  after(async () => {
    await relay?.stop();
    await postfix?.stop();
    await sink?.stop();
    await clamd?.stop();
  });

  /** One transaction on a fresh session to `port`: the replies to MAIL, the RCPT line, DATA and the end of data. */
  async function transaction(port: number, from: string, rcpt: string, subject: string): Promise<string[]> {
    const c = await SmtpTestClient.connect(port);
    try {
      assert.equal((await c.read()).code, 220);
      assert.equal((await c.command('EHLO client.example')).code, 250);
      const replies = [await c.command(`MAIL FROM:<${from}>`), await c.command(rcpt)];
      if (replies[1].code === 250) {
        replies.push(await c.command('DATA'));
        c.write(`${message({ Subject: subject }, 'hello').replace(/\r\n$/, '')}\r\n.\r\n`);
        replies.push(await c.read());
      }
      await c.command('QUIT').catch(() => undefined);
      return replies.map((r) => String(r.code));
    } finally {
      c.destroy();
    }
  }

  const cases = [
    { name: 'a VERP sender with a 118-octet local part', from: VERP, rcpt: 'RCPT TO:<user@example.org>' },
    { name: 'a RCPT with NOTIFY and ORCPT, 650 characters', from: 's@example.net', rcpt: rcptLine('user@example.org', 650) },
    {
      name: 'a RCPT with NOTIFY and ORCPT, 1012 characters (512 + the 500 of RFC 3461)',
      from: 's@example.net', rcpt: rcptLine('user@example.org', 1012),
    },
    {
      name: 'a RCPT line of 2048 characters (Postfix\'s line_length_limit)',
      from: 's@example.net', rcpt: rcptLine('user@example.org', 2048),
    },
  ];
  for (const { name, from, rcpt } of cases) {
    it(`${name}: the same replies as Postfix directly, and delivered`, async () => {
      const tag = name.replace(/\W+/g, '-');
      const direct = await transaction(postfix.port, from, rcpt, `direct ${tag}`);
      const relayed = await transaction(relay.port, from, rcpt, `relayed ${tag}`);
      assert.deepEqual(direct, ['250', '250', '354', '250']);
      assert.deepEqual(relayed, direct);
      await postfix.settle();
      for (const kind of ['direct', 'relayed']) {
        const got = sink.messages.find((m) => m.data.includes(`Subject: ${kind} ${tag}`));
        assert.ok(got, `${kind}: not delivered`);
        assert.equal(got.from, from);
      }
    });
  }
});

// A real Postfix as the CLIENT: one message to two recipients, one routed straight to a byte-recording
// server, the other through the relay to the same server (transport_maps). What the server gets from each
// must be the same, command by command and byte by byte, but for what the relay adds on purpose: its own
// EHLO and XCLIENT before the client's EHLO, and its X-Virus-Scanner field.
describe('a real Postfix as the client: what the server gets through the relay is what it gets directly', function () {
  this.timeout(120_000);
  let clamd: Clamd;
  let server: ScriptedServer;
  let relay: Relay;

  before(async () => {
    server = new ScriptedServer();
    await server.start();
    clamd = await startClamd();
    const port = await freePort();
    relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: server.port, clamdSocket: clamd.socket }))], port);
  });
  after(async () => {
    await relay?.stop();
    await clamd?.stop();
    await server?.stop();
  });

  it('VERP sender, DSN parameters, 8-bit body, a 998-character header line, a dot-led line: the same at the server', async () => {
    const postfix = await startPostfixInstance((dir, etc) => [
      ...baseMainCf(dir, 'client.test'),
      'mynetworks = 127.0.0.0/8',
      'smtpd_relay_restrictions = permit_mynetworks, reject',
      `transport_maps = texthash:${etc}/transport`,
      // one delivery per recipient (so each server session holds one)
      'smtp_destination_recipient_limit = 1',
    ], {
      transport: `direct.example smtp:[127.0.0.1]:${server.port}\nrelayed.example smtp:[127.0.0.1]:${relay.port}\n`,
    });
    try {
      const submit = await SmtpTestClient.connect(postfix.port);
      assert.equal((await submit.read()).code, 220);
      assert.equal((await submit.command('EHLO submitter.example')).code, 250);
      assert.equal((await submit.command(`MAIL FROM:<${VERP}> RET=HDRS ENVID=PF-ENV-42 BODY=8BITMIME`)).code, 250);
      const orcpt = `rfc822;${'o'.repeat(500)}@example.org`;
      for (const d of ['direct', 'relayed']) {
        assert.equal((await submit.command(`RCPT TO:<user@${d}.example> NOTIFY=SUCCESS,FAILURE ORCPT=${orcpt}`)).code, 250);
      }
      const body = [
        'From: sender@example.com', 'To: user@direct.example, user@relayed.example', 'Subject: both ways',
        `X-Long: ${'l'.repeat(990)}`, 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '',
        'h\u00e9llo, \u00fcnicode', '..a line that began with a dot', '.', 'end',
      ].join('\r\n');
      assert.equal((await submit.data(Buffer.from(`${body}\r\n`, 'utf8').toString('latin1'))).code, 250);
      submit.end();
      const bySession = (domain: string) => (): ScriptedSession | undefined =>
        server.sessions.find((x) => x.messages.length > 0 && x.commands.some((c) => c.includes(`user@${domain}.example`)));
      await server.until(() => bySession('direct')() !== undefined && bySession('relayed')() !== undefined);
      const direct = bySession('direct')()!;
      const relayed = bySession('relayed')()!;
      const upToData = (x: ScriptedSession): string[] => x.commands.slice(0, x.commands.indexOf('DATA') + 1);
      // the relay's own EHLO and its XCLIENT come first; then the client's session as it sent it
      const relayedCommands = upToData(relayed);
      assert.match(relayedCommands[0], /^EHLO /);
      assert.match(relayedCommands[1], /^XCLIENT /);
      const normal = (lines: string[]): string[] => lines.map((l) => l.replace(/relayed\.example/g, 'direct.example'));
      assert.deepEqual(normal(relayedCommands.slice(2)), upToData(direct));
      const withoutScanner = relayed.messages[0].toString('latin1').replace(/^X-Virus-Scanner: [^\r\n]*\r\n/m, '');
      assert.match(relayed.messages[0].toString('latin1'), /^X-Virus-Scanner: /m);
      assert.equal(withoutScanner, direct.messages[0].toString('latin1'));
    } finally {
      await postfix.stop();
    }
  });
});
