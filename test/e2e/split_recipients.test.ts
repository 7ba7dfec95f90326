// split_recipients = yes (extension): a recipient whose user section differs
// from the first one's is answered 451 4.5.3, and a real MTA (Postfix) that
// queues and retries sends it again in a transaction of its own, where its
// own section applies.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Clamd, startClamd } from '../support/clamd';
import { Postfix, startPostfix } from '../support/postfix';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';

describe('split_recipients with Postfix as the retrying client', function () {
  this.timeout(90_000);
  let clamd: Clamd;

  before(async () => {
    clamd = await startClamd();
  });
  after(() => clamd?.stop());

  async function run(split: boolean, check: (sink: Sink, postfix: Postfix) => void | Promise<void>): Promise<void> {
    const sink = new Sink();
    await sink.start();
    const port = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, {
      serverPort: sink.port, clamdSocket: clamd.socket,
      smtp: { user_config: '"users.cfg"', split_recipients: split ? 'yes' : 'no' },
    }));
    // the quiet.example section adds no X-Virus-Scanner: visible per delivered copy
    fs.writeFileSync(path.join(path.dirname(cfg), 'users.cfg'), '[quiet.example]\nadd_header_xvirus = no\n');
    const relay: Relay = await startRelay(['--config', cfg], port);
    const postfix = await startPostfix(port);
    try {
      const client = await SmtpTestClient.connect(postfix.port);
      await client.read();
      await client.command('EHLO client.example');
      const r = await client.send('a@example.com', ['x@quiet.example', 'y@loud.example'], 'Subject: two policies\r\n\r\nclean body\r\n');
      client.end();
      assert.equal(r.data?.code, 250, 'Postfix did not take the message');
      for (let i = 0; i < 300 && sink.messages.reduce((n, m) => n + m.to.length, 0) < 2; i++) {
        await new Promise((res) => setTimeout(res, 100));
        // the deferred recipient, retried now rather than when qmgr gets to it (see Postfix.flush)
        if (i % 20 === 19) postfix.flush();
      }
      await check(sink, postfix);
    } finally {
      await postfix.stop();
      await relay.stop();
      await sink.stop();
    }
  }

  it('without it (ESETS default): one transaction, both recipients, the first recipient\'s section', async () => {
    await run(false, (sink) => {
      assert.equal(sink.messages.length, 1);
      assert.deepEqual([...sink.messages[0].to].sort(), ['x@quiet.example', 'y@loud.example']);
    });
  });

  it('with it: the second recipient is deferred with 451 4.5.3, retried alone, and each copy follows its own section', async () => {
    await run(true, (sink, postfix) => {
      assert.equal(sink.messages.length, 2, postfix.log());
      const quiet = sink.messages.find((m) => m.to.includes('x@quiet.example'));
      const loud = sink.messages.find((m) => m.to.includes('y@loud.example'));
      assert.deepEqual(quiet?.to, ['x@quiet.example']);
      assert.deepEqual(loud?.to, ['y@loud.example']);
      assert.doesNotMatch(quiet!.data.toString(), /^X-Virus-Scanner:/m);
      assert.match(loud!.data.toString(), /^X-Virus-Scanner: .*; clean/m);
      assert.match(postfix.log(), /status=deferred \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 451 4\.5\.3 Recipient has another policy/);
    });
  });
});
