// Routing in a local part (issue 23): a real Postfix with its defaults
// (allow_percent_hack, swap_bangpath, resolve_dequoted_address) delivers
// victim%example.org@lenient.example to victim@example.org. Through the relay,
// a user section for lenient.example (action_av = accept) must not govern that
// mail: the recipient is refused 550 5.1.3 and nothing reaches the server; the
// same for the sender side (550 5.1.7).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { PostfixServer, startPostfixServer } from '../support/postfix_server';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { message, SmtpTestClient } from '../support/smtp_client';

const FORMS = [
  'victim%example.org@lenient.example',
  'example.org!victim@lenient.example',
  '"victim@example.org"@lenient.example',
  '"victim%example.org"@lenient.example',
];

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
      // lenient.example is Postfix's own: the routing in its local parts is resolved further (Postfix's defaults)
      startPostfixServer({ deliverTo: sink.port, relayDomains: ['example.org'], main: { mydestination: 'lenient.example' } }),
    ]);
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, {
      serverPort: postfix.port, clamdSocket: clamd.socket, smtp: { user_config: '"users.cfg"' },
    }));
    fs.writeFileSync(path.join(path.dirname(cfg), 'users.cfg'),
      '[lenient.example]\naction_av = accept\n\n[|partner.example]\naction_av = accept\n');
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
      assert.match(r.lines[0], /^5\.1\.3 /);
      await c.command('RSET');
    }
    const plain = await c.send('s@example.net', ['victim@example.org'], message({ Subject: 'eicar plain' }, EICAR));
    assert.equal(plain.data?.code, 550);
    assert.match(plain.data!.lines.join(' '), /5\.7\.1 .*infected/);
    c.end();
    await postfix.settle();
    assert.ok(!sink.messages.some((m) => m.to.includes('victim@example.org') && /eicar plain/.test(m.data.toString())));
  });

  it("the sender side: a sender whose routing reads outside [|partner.example] is refused 550 5.1.7", async () => {
    const c = await session(relay.port);
    assert.equal((await c.command('MAIL FROM:<x%attacker.example@partner.example>')).code, 250);
    const r = await c.command('RCPT TO:<victim@example.org>');
    assert.equal(r.code, 550, r.lines.join(' '));
    assert.match(r.lines[0], /^5\.1\.7 /);
    c.end();
  });
});
