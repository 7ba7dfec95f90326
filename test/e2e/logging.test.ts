// LOGGING (esets_smtp(1)): one summary line per message, NOTICE for accept,
// WARNING otherwise, to a real syslog daemon when syslog_facility is set.

import assert from 'node:assert/strict';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Rsyslog, startRsyslog } from '../support/rsyslog';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';

async function send(relay: Relay, from: string, subject: string, body: string): Promise<number> {
  const client = await SmtpTestClient.connect(relay.port);
  await client.read();
  await client.command('EHLO client.example');
  const r = await client.send(from, ['user@example.org'], `Subject: ${subject}\r\nMessage-ID: <${subject}@test>\r\n\r\n${body}\r\n`);
  client.end();
  return r.data!.code;
}

async function waitFor(read: () => string, pattern: RegExp): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const text = read();
    if (pattern.test(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  return read();
}

describe('summary logging', function () {
  this.timeout(60_000);
  let clamd: Clamd;
  let sink: Sink;
  let rsyslog: Rsyslog;

  before(async () => {
    [clamd, rsyslog] = await Promise.all([startClamd(), startRsyslog()]);
    sink = new Sink();
    await sink.start();
  });
  after(async () => {
    await Promise.all([clamd?.stop(), rsyslog?.stop(), sink?.stop()]);
  });

  async function relayWith(global: Record<string, string>, smtp: Record<string, string> = {}): Promise<Relay> {
    const port = await freePort();
    return startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket: clamd.socket, global, smtp }))], port);
  }

  it('syslog_facility = mail: accept at mail.notice, reject at mail.warning, with sender, recipient, verdict, option, id, size, time', async () => {
    const relay = await relayWith({ syslog_facility: 'mail', syslog_socket: `"${rsyslog.socket}"` });
    try {
      assert.equal(await send(relay, 'good@example.com', 'log-clean', 'hello'), 250);
      assert.equal(await send(relay, 'bad@example.com', 'log-virus', EICAR), 550);
      const log = await waitFor(rsyslog.read, /log-virus/);
      // the pid is the Haraka worker's (num_proc workers under the launcher)
      assert.match(log, new RegExp(`^mail\\.notice esets_smtp\\[\\d+\\]: action=accept by=action_as from="<good@example\\.com>" to="<user@example\\.org>" section="\\[smtp\\]" rcpts=1 av="clean" as="not scanned: action_as = accept" message_id="<log-clean@test>" size=\\d+ time=\\d+ms$`, 'm'));
      assert.match(log, /^mail\.warning esets_smtp\[\d+\]: action=reject by=action_av_infected from="<bad@example\.com>" .*av="infected: Eicar-Test-Signature.*" message_id="<log-virus@test>"/m);
      assert.doesNotMatch(relay.output(), /action=accept by=/, "with syslog on, summaries do not go to Haraka's log");
    } finally {
      await relay.stop();
    }
  });

  it('syslog_class without summary: no summary lines reach syslog', async () => {
    const relay = await relayWith({ syslog_facility: 'local3', syslog_socket: `"${rsyslog.socket}"`, syslog_class: '"error:warning"' });
    try {
      assert.equal(await send(relay, 'quiet@example.com', 'log-quiet', 'hello'), 250);
      await new Promise((r) => setTimeout(r, 500));
      assert.doesNotMatch(rsyslog.read(), /quiet@example\.com/);
    } finally {
      await relay.stop();
    }
  });

  it("syslog_facility = none: summaries go to Haraka's log at NOTICE and WARN", async () => {
    const relay = await relayWith({});
    try {
      assert.equal(await send(relay, 'a@example.com', 'haraka-clean', 'hello'), 250);
      assert.equal(await send(relay, 'a@example.com', 'haraka-virus', EICAR), 550);
      const out = await waitFor(relay.output, /haraka-virus/);
      assert.match(out, /\[NOTICE\] .*\[esets_policy\] action=accept by=action_as .*message_id="<haraka-clean@test>"/);
      assert.match(out, /\[WARN\] .*\[esets_policy\] action=reject by=action_av_infected .*message_id="<haraka-virus@test>"/);
    } finally {
      await relay.stop();
    }
  });
});
