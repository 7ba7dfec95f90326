// Routing in a local part (issue 23): a real Postfix with its defaults
// (allow_percent_hack, swap_bangpath, resolve_dequoted_address) delivers
// victim%example.org@lenient.example to victim@example.org. Through the relay,
// a user section for lenient.example (action_av = accept) must not govern that
// mail: the recipient is refused 550 5.1.3 and nothing reaches the server; the
// same for the sender side (550 5.1.7). Forms the issue does not name (mixed %
// and !, several %, upper case, quoted-pairs, empty parts, source routes) are
// sent to Postfix directly: where it delivers each must be one of the relay's
// readings, and the one resolvedReading gives for Postfix's own domains. Each
// user section layout (domain, full address, sender only, both parts,
// inherited) is refused the same way; address_routing = delivered uses the
// section of the address Postfix delivers to.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { deliveryReadings, resolvedReading } from '../../src/lib/delivery_readings';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { PostfixServer, startPostfixServer } from '../support/postfix_server';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { message, SmtpTestClient } from '../support/smtp_client';
import { relayReplyTrace } from '../support/relay_reply';

const FORMS = [
  'victim%example.org@lenient.example',
  'example.org!victim@lenient.example',
  '"victim@example.org"@lenient.example',
  '"victim%example.org"@lenient.example',
];

/** Postfix's own domains (mydestination) in this test */
const OWN = ['lenient.example', 'a.example', 'strict.example'];

describe('routing in a local part never borrows a lax user section (real Postfix, percent hack and bang paths on)', function () {
  this.timeout(120_000);
  let clamd: Clamd;
  let sink: Sink;
  let postfix: PostfixServer;
  let relay: Relay;

  before(async () => {
    sink = new Sink();
    await sink.start();
    [clamd, postfix] = await Promise.all([
      startClamd(),
      // lenient.example (and a.example, strict.example) are Postfix's own: the routing in their local parts is
      // resolved further (Postfix's defaults); any local user is taken and handed to the sink, so every
      // address Postfix ends at is seen there
      startPostfixServer({
        deliverTo: sink.port, relayDomains: ['example.org', 'b.example', 'lax-dest.example', 'attacker.example'],
        main: { mydestination: OWN.join(', '), local_recipient_maps: '', local_transport: `smtp:[127.0.0.1]:${sink.port}` },
      }),
    ]);
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, {
      serverPort: postfix.port, clamdSocket: clamd.socket, smtp: { user_config: '"users.cfg"' },
    }));
    fs.writeFileSync(path.join(path.dirname(cfg), 'users.cfg'),
      '[lenient.example]\naction_av = accept\n\n[|partner.example]\naction_av = accept\n\n[lax-dest.example]\naction_av = accept\n');
    relay = await startRelay(['--config', cfg], port);
  });
  after(async () => {
    await relay?.stop();
    await postfix?.stop();
    await sink?.stop();
    await clamd?.stop();
  });

  async function session(port: number): Promise<SmtpTestClient> {
    const c = await SmtpTestClient.connect(port);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.command('EHLO client.example')).code, 250);
    return c;
  }

  it('Postfix itself delivers each form to victim@example.org (what the relay must judge)', async () => {
    const c = await session(postfix.port);
    for (const [i, rcpt] of FORMS.entries()) {
      const r = await c.send('s@example.net', [rcpt], message({ Subject: `direct ${i}` }, 'hello'));
      assert.equal(r.data?.code, 250, `${rcpt}: ${r.rcpts.map((x) => `${x.code} ${x.lines.join(' ')}`).join(', ')}`);
    }
    c.end();
    await postfix.settle();
    for (const i of FORMS.keys()) {
      const got = sink.messages.find((m) => m.data.includes(`Subject: direct ${i}`));
      assert.ok(got, `direct ${i} not delivered`);
      assert.deepEqual(got.to, ['victim@example.org'], `${FORMS[i]} went to ${got.to.join(',')}`);
    }
  });

  it('through the relay each form is refused 550 5.1.3, and EICAR to the plain address is rejected by [smtp]', async () => {
    const c = await session(relay.port);
    for (const rcpt of FORMS) {
      assert.equal((await c.command('MAIL FROM:<s@example.net>')).code, 250);
      const r = await c.command(`RCPT TO:<${rcpt}>`);
      assert.equal(r.code, 550, `${rcpt}: ${r.code} ${r.lines.join(' ')}`);
      relayReplyTrace(r.lines[0], /^5\.1\.3 Recipient address routing \(%, !, quoted @\) not accepted here, use a plain address$/);
      await c.command('RSET');
    }
    const plain = await c.send('s@example.net', ['victim@example.org'], message({ Subject: 'eicar plain' }, EICAR));
    assert.equal(plain.data?.code, 550);
    assert.match(plain.data!.lines.join(' '), /5\.7\.1 .*virus found/);
    c.end();
    await postfix.settle();
    assert.ok(!sink.messages.some((m) => m.to.includes('victim@example.org') && /eicar plain/.test(m.data.toString())));
  });

  it("the sender side: a sender whose routing reads outside [|partner.example] is refused 550 5.1.7", async () => {
    const c = await session(relay.port);
    assert.equal((await c.command('MAIL FROM:<x%attacker.example@partner.example>')).code, 250);
    const r = await c.command('RCPT TO:<victim@example.org>');
    assert.equal(r.code, 550, r.lines.join(' '));
    relayReplyTrace(r.lines[0], /^5\.1\.7 Sender address routing \(%, !, quoted @\) not accepted here, use a plain address$/);
    c.end();
  });

  /** the address as Postfix or the sink writes it, compared as the relay compares (case, quotes) */
  const norm = (address: string): string => {
    const at = address.lastIndexOf('@');
    const local = address.slice(0, at);
    const unquoted = /^".*"$/.test(local) ? local.slice(1, -1).replace(/\\(.)/g, '$1') : local;
    return `${unquoted}@${address.slice(at + 1)}`.toLowerCase();
  };
  const split = (address: string): [string, string] => {
    const at = address.lastIndexOf('@');
    return [address.slice(0, at), address.slice(at + 1)];
  };

  // forms the issue does not name: where Postfix delivers each must be one of the relay's readings
  const UNNAMED = [
    'a.example!victim%example.org@lenient.example', // mixed: the bang path first, then the percent hack
    'victim%example.org%lenient.example@lenient.example', // several %
    'VICTIM%EXAMPLE.ORG@LENIENT.EXAMPLE', // upper case
    '"a\\"b%example.org"@lenient.example', // a quoted-pair in a quoted local part
    '"victim\\@example.org"@lenient.example',
    '"a.example!victim%example.org"@lenient.example', // quoted: looked inside, then ! before %
    '"a.example!victim"@lenient.example',
    '%@lenient.example', // empty parts
    '!victim@lenient.example',
    'victim%@lenient.example',
  ];

  it("forms not named: Postfix delivers each to one of the relay's readings, the one resolvedReading gives", async () => {
    const c = await session(postfix.port);
    const answers: number[] = [];
    for (const [i, rcpt] of UNNAMED.entries()) {
      const r = await c.send('s@example.net', [rcpt], message({ Subject: `unnamed ${i}` }, 'hello'));
      answers.push(r.data?.code ?? r.rcpts[0].code);
    }
    c.end();
    await postfix.settle();
    let delivered = 0;
    for (const [i, rcpt] of UNNAMED.entries()) {
      const got = sink.messages.filter((m) => m.data.includes(`Subject: unnamed ${i}\r\n`));
      if (answers[i] !== 250) {
        assert.equal(got.length, 0, `${rcpt}: refused ${answers[i]} yet delivered`);
        continue;
      }
      assert.equal(got.length, 1, `${rcpt}: accepted, delivered ${got.length} times`);
      delivered++;
      const [local, domain] = split(rcpt);
      const readings = deliveryReadings(local, domain).map((r) => `${r.local}@${r.domain}`.toLowerCase());
      const to = norm(got[0].to[0]);
      assert.ok(readings.includes(to), `${rcpt}: Postfix delivered to ${got[0].to[0]}, not one of ${readings.join(' ')}`);
      const resolved = resolvedReading(local, domain, (d) => OWN.includes(d.toLowerCase()));
      assert.equal(to, `${resolved.local}@${resolved.domain}`.toLowerCase(), `${rcpt}: resolvedReading`);
    }
    // the forms that route somewhere are all delivered; Postfix refuses the empty parts itself (501)
    assert.deepEqual(answers.slice(0, 7), Array(7).fill(250));
    assert.equal(delivered, 7, answers.join(' '));
  });

  it('forms not named, through the relay: each that routes outside [lenient.example] is refused 550 5.1.3', async () => {
    const c = await session(relay.port);
    for (const rcpt of UNNAMED.slice(0, 7)) {
      assert.equal((await c.command('MAIL FROM:<s@example.net>')).code, 250);
      const r = await c.command(`RCPT TO:<${rcpt}>`);
      assert.equal(r.code, 550, `${rcpt}: ${r.code} ${r.lines.join(' ')}`);
      assert.match(r.lines[0], /^5\.1\.3 /);
      await c.command('RSET');
    }
    c.end();
  });

  it('trailing dots and an IP literal in a local part are refused by the address parser, never passed on', async () => {
    const mark = postfix.mark();
    const c = await session(relay.port);
    for (const rcpt of ['victim%example.org.@lenient.example', 'victim@lenient.example.', 'victim%[127.0.0.1]@lenient.example']) {
      assert.equal((await c.command('MAIL FROM:<s@example.net>')).code, 250);
      const r = await c.command(`RCPT TO:<${rcpt}>`);
      assert.ok(r.code >= 500 && r.code < 600, `${rcpt}: ${r.code} ${r.lines.join(' ')}`);
      await c.command('RSET');
    }
    c.end();
    await postfix.settle();
    assert.doesNotMatch(postfix.logSince(mark), /RCPT|to=</);
  });

  it('empty parts (%@, !user@, user%@) read under [lenient.example] alone: Postfix refuses them, nothing delivered', async () => {
    const c = await session(relay.port);
    for (const [i, rcpt] of UNNAMED.slice(7).entries()) {
      const r = await c.send('s@example.net', [rcpt], message({ Subject: `empty ${i}` }, EICAR));
      assert.ok(r.rcpts[0].code >= 500 && r.rcpts[0].code < 600, `${rcpt}: ${r.rcpts[0].code} ${r.rcpts[0].lines.join(' ')}`);
    }
    c.end();
    await postfix.settle();
    assert.ok(!sink.messages.some((m) => /Subject: empty \d/.test(m.data.toString())));
  });

  it('a source route is dropped by the parser: the relay and Postfix both read victim@lenient.example', async () => {
    const route = '@a.example,@b.example:victim@lenient.example';
    const direct = await session(postfix.port);
    const d = await direct.send('s@example.net', [route], message({ Subject: 'route direct' }, 'hello'));
    direct.end();
    assert.equal(d.data?.code, 250, d.rcpts.map((x) => `${x.code} ${x.lines.join(' ')}`).join(', '));
    const c = await session(relay.port);
    // under [lenient.example] (action_av = accept): EICAR passes, to the address Postfix delivers to
    const r = await c.send('s@example.net', [route], message({ Subject: 'route relayed' }, EICAR));
    c.end();
    assert.equal(r.data?.code, 250, r.rcpts.map((x) => `${x.code} ${x.lines.join(' ')}`).join(', '));
    await postfix.settle();
    for (const subject of ['route direct', 'route relayed']) {
      const got = sink.messages.find((m) => m.data.includes(`Subject: ${subject}\r\n`));
      assert.deepEqual(got?.to, ['victim@lenient.example'], subject);
    }
  });

  it('delivered lax, written strict: victim%lax-dest.example@strict.example is refused 550 5.1.3 as well', async () => {
    const c = await session(relay.port);
    assert.equal((await c.command('MAIL FROM:<s@example.net>')).code, 250);
    const r = await c.command('RCPT TO:<victim%lax-dest.example@strict.example>');
    assert.equal(r.code, 550, r.lines.join(' '));
    assert.match(r.lines[0], /^5\.1\.3 /);
    c.end();
  });

  /** Starts a relay with `users` as its user_config (and more [smtp] settings), runs `fn`, stops it. */
  async function withRelay(users: string, smtp: Record<string, string>, fn: (r: Relay) => Promise<void>): Promise<void> {
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, {
      serverPort: postfix.port, clamdSocket: clamd.socket, smtp: { user_config: '"users.cfg"', ...smtp },
    }));
    fs.writeFileSync(path.join(path.dirname(cfg), 'users.cfg'), users);
    const r = await startRelay(['--config', cfg], port);
    try {
      await fn(r);
    } finally {
      await r.stop();
    }
  }

  const SENDER_FORMS = [
    'x%attacker.example@partner.example', 'attacker.example!x@partner.example', '"x@attacker.example"@partner.example',
  ];
  const LAYOUTS: { name: string; users: string; plain: [string, string]; rcptForms: string[]; senderForms: string[] }[] = [
    { name: 'recipient domain', users: '[lenient.example]\naction_av = accept\n',
      plain: ['s@example.net', 'victim@lenient.example'], rcptForms: FORMS, senderForms: [] },
    // the written address is strict, a reading the lax full address: refused too
    { name: 'full address', users: '[victim@lenient.example]\naction_av = accept\n',
      plain: ['s@example.net', 'victim@lenient.example'],
      rcptForms: [
        'victim%lenient.example@strict.example', 'lenient.example!victim@strict.example', '"victim@lenient.example"@strict.example',
      ],
      senderForms: [] },
    { name: 'sender only', users: '[|partner.example]\naction_av = accept\n',
      plain: ['x@partner.example', 'victim@example.org'], rcptForms: [], senderForms: SENDER_FORMS },
    { name: 'recipient and sender', users: '[lenient.example|partner.example]\naction_av = accept\n',
      plain: ['x@partner.example', 'victim@lenient.example'], rcptForms: FORMS, senderForms: SENDER_FORMS },
    { name: 'inherited (parent_id)', users: '[lax]\naction_av = accept\n\n[lenient.example]\nparent_id = "lax"\n',
      plain: ['s@example.net', 'victim@lenient.example'], rcptForms: FORMS, senderForms: [] },
  ];

  for (const layout of LAYOUTS) {
    it(`layout ${layout.name}: the plain address gets the lax section (EICAR passes), each routing form is refused`, async () => {
      await withRelay(layout.users, {}, async (r) => {
        const [sender, rcpt] = layout.plain;
        const c = await session(r.port);
        const subject = `layout ${layout.name}`;
        const plain = await c.send(sender, [rcpt], message({ Subject: subject }, EICAR));
        assert.equal(plain.data?.code, 250, `${plain.data?.code} ${plain.data?.lines.join(' ')}`);
        const tries: [string, string, RegExp][] = [
          ...layout.rcptForms.map((f): [string, string, RegExp] => [sender, f, /^5\.1\.3 /]),
          ...layout.senderForms.map((f): [string, string, RegExp] => [f, rcpt, /^5\.1\.7 /]),
        ];
        for (const [from, to, code] of tries) {
          assert.equal((await c.command(`MAIL FROM:<${from}>`)).code, 250);
          const reply = await c.command(`RCPT TO:<${to}>`);
          assert.equal(reply.code, 550, `${from} -> ${to}: ${reply.code} ${reply.lines.join(' ')}`);
          assert.match(reply.lines[0], code, `${from} -> ${to}`);
          await c.command('RSET');
        }
        c.end();
        await postfix.settle();
        assert.ok(sink.messages.some((m) => m.data.includes(`Subject: ${subject}\r\n`)), `${subject} not delivered`);
      });
    });
  }

  it('address_routing = delivered: the section of the address Postfix delivers to, both ways', async () => {
    const users = '[lenient.example]\naction_av = accept\n\n[|partner.example]\naction_av = accept\n\n'
      + '[lax-dest.example]\naction_av = accept\n';
    await withRelay(users, { address_routing: 'delivered' }, async (r) => {
      const c = await session(r.port);
      // delivered to victim@example.org, under [smtp]: EICAR is rejected, not passed by [lenient.example]
      for (const rcpt of [...FORMS, ...UNNAMED.slice(0, 7)]) {
        const sent = await c.send('s@example.net', [rcpt], message({ Subject: 'delivered strict' }, EICAR));
        assert.equal(sent.rcpts[0].code, 250, `${rcpt}: ${sent.rcpts[0].code} ${sent.rcpts[0].lines.join(' ')}`);
        assert.equal(sent.data?.code, 550, `${rcpt}: ${sent.data?.code}`);
        assert.match(sent.data!.lines.join(' '), /5\.7\.1 .*virus found/);
      }
      // a sender resolved outside [|partner.example]: the agent section
      const forged = await c.send(SENDER_FORMS[0], ['victim@example.org'], message({ Subject: 'delivered strict' }, EICAR));
      assert.equal(forged.data?.code, 550);
      // written under [smtp], delivered to lax-dest.example: its lax section, as if sent there directly
      const lax = await c.send(
        's@example.net', ['victim%lax-dest.example@strict.example'], message({ Subject: 'delivered lax' }, EICAR),
      );
      assert.equal(lax.data?.code, 250, `${lax.data?.code} ${lax.data?.lines.join(' ')}`);
      c.end();
      await postfix.settle();
      assert.ok(!sink.messages.some((m) => m.data.includes('Subject: delivered strict\r\n')));
      assert.deepEqual(sink.messages.find((m) => m.data.includes('Subject: delivered lax\r\n'))?.to, ['victim@lax-dest.example']);
    });
  });
});
