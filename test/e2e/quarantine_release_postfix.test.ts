// Releases from the quarantine judged by a real Postfix as the mail server
// (relaying for its own network only; the relay's clients come from
// 127.0.0.2): a release cannot reach where the original client could not,
// and a message with UTF-8 addresses is released.

import assert from 'node:assert/strict';
import path from 'node:path';
import { FolderQuarantineStore } from '../../src/io/quarantine_store';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { PostfixServer, startPostfixServer } from '../support/postfix_server';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { runEsetsQuar } from '../support/esets_quar';
import { removeTempDir, tempDir } from '../support/temp_dirs';

const quar = runEsetsQuar;

describe('quarantine releases judged by a real Postfix', function () {
  this.timeout(180_000);
  let clamd: Clamd;
  let sink: Sink;
  let postfix: PostfixServer;
  let relay: Relay;
  let cfg: string;
  let store: FolderQuarantineStore;
  let folder: string;

  before(async () => {
    sink = new Sink();
    await sink.start();
    [clamd, postfix] = await Promise.all([startClamd(), startPostfixServer({ deliverTo: sink.port, relayDomains: ['example.org'] })]);
    folder = tempDir('esets-quar-release-');
    const port = await freePort();
    cfg = writeEsetsCfg(esetsCfg(port, {
      serverPort: postfix.port, clamdSocket: clamd.socket,
      global: { daemon_quarantine: `"${path.join(folder, 'q')}"` }, smtp: { av_quarantine_enabled: 'yes' },
    }));
    store = new FolderQuarantineStore(path.join(folder, 'q'));
    relay = await startRelay(['--config', cfg], port);
  });
  after(async () => {
    await relay?.stop();
    await postfix?.stop();
    await Promise.all([clamd?.stop(), sink?.stop()]);
    removeTempDir(folder);
  });

  async function sendInfected(from: string, to: string, subject: string, mailParams = ''): Promise<string> {
    const client = await SmtpTestClient.connect(relay.port, '127.0.0.2');
    await client.read();
    await client.command('EHLO client.example');
    const before = new Set(store.list().map((e) => e.id));
    const r = await client.send(from, [to], `Subject: ${subject}\r\nMessage-ID: <${subject}@attack.test>\r\n\r\n${EICAR}\r\n`, mailParams);
    await client.command('QUIT').catch(() => undefined);
    client.end();
    assert.equal(r.data?.code, 550, JSON.stringify(r));
    const kept = store.list().filter((e) => !before.has(e.id));
    assert.equal(kept.length, 1);
    return kept[0].id;
  }

  it('release --to a foreign domain: Postfix judges the original client (127.0.0.2) and refuses; nothing delivered', async () => {
    const id = await sendInfected('alice@example.net', 'bob@example.org', 'foreign-to');
    const r = await quar(cfg, ['release', id, '--to', 'victim@foreign.test']);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /Relay access denied/);
    await postfix.settle();
    assert.ok(!sink.messages.some((m) => m.to.includes('victim@foreign.test')));
    const ok = await quar(cfg, ['release', id]);
    assert.equal(ok.code, 0, ok.stderr);
    await postfix.settle();
    assert.equal(sink.messages.filter((m) => m.data.includes('<foreign-to@attack.test>')).length, 1);
  });

  it('an SMTPUTF8 message (UTF-8 addresses) is released and arrives, to its UTF-8 recipient', async () => {
    const id = await sendInfected('jörg@example.net', 'müller@example.org', 'utf8-release', ' SMTPUTF8');
    const r = await quar(cfg, ['release', id]);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    await postfix.settle();
    const got = sink.messages.filter((m) => m.data.includes('<utf8-release@attack.test>'));
    assert.equal(got.length, 1);
    assert.deepEqual(got[0].to, ['müller@example.org']);
  });
});
