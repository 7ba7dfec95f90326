// The Handle Object Policy end to end: real clamd (also stalled), real spamd,
// each verdict under each action, asserting the client's reply and what the
// mail server did or did not receive.

import { CLEAN_MAX_BYTES } from '../../src/io/virus_scan';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CLAMAV_TESTFILES, Clamd, EICAR, GTUBE, startClamd } from '../support/clamd';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { Spamd, startSpamd } from '../support/spamd';
import { eventually } from '../support/processes';

type Action = 'reject' | 'defer' | 'discard' | 'accept';
/** the reply's words for a message clamd gave no verdict on, whatever the reason (the log says which) */
const NOT_SCANNED = /: it could not be scanned for viruses, /;
const ACTIONS: Action[] = ['reject', 'defer', 'discard', 'accept'];

let serial = 0;
function uniqueSubject(label: string): string {
  return `${label} #${++serial}-${process.pid}`;
}

function withAttachment(subject: string, filename: string, content: Buffer): string {
  return [
    `Subject: ${subject}`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="sep"',
    '',
    '--sep',
    'Content-Type: text/plain',
    '',
    'see the attachment',
    '--sep',
    `Content-Type: application/octet-stream; name="${filename}"`,
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${filename}"`,
    '',
    content.toString('base64').replace(/.{76}/g, '$&\r\n'),
    '--sep--',
    '',
  ].join('\r\n');
}

/** Sends one message on a new session; returns the reply to the end of DATA. */
async function sendOne(relay: Relay, message: string): Promise<{ code: number; text: string }> {
  const client = await SmtpTestClient.connect(relay.port);
  await client.read();
  await client.command('EHLO client.example');
  const r = await client.send('sender@example.com', ['user@example.org'], message);
  client.end();
  const reply = r.data ?? r.rcpts[0];
  return { code: reply.code, text: reply.lines.join(' ') };
}

describe('Handle Object Policy end to end (clamd, spamd)', function () {
  this.timeout(180_000);
  let clamd: Clamd;
  let stalled: Clamd;
  let spamd: Spamd;
  let sink: Sink;
  const relays: Relay[] = [];

  before(async () => {
    [clamd, stalled, spamd] = await Promise.all([startClamd(), startClamd(), startSpamd()]);
    stalled.stall();
    sink = new Sink();
    await sink.start();
  });

  after(async () => {
    await Promise.all(relays.map((r) => r.stop()));
    await Promise.all([clamd?.stop(), stalled?.stop(), spamd?.stop(), sink?.stop()]);
  });

  function received(subject: string): Buffer | undefined {
    return sink.messages.find((m) => m.data.toString('latin1').includes(`Subject: ${subject}`))?.data;
  }

  async function relay(
    smtp: Record<string, string | number>, global: Record<string, string | number>, clamdSocket: string,
  ): Promise<Relay> {
    const port = await freePort();
    const r = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: sink.port, clamdSocket, global, smtp }))], port);
    relays.push(r);
    return r;
  }

  /**
   * The reply and delivery each action calls for. A refusal names the verdict class (`verdict`: its words after
   * "rejected"/"deferred"), never a scanner's address, path or error, and ends with the trace id; the relay's log
   * line of that id has what the reply leaves out (`logged`, the summary's verdict).
   */
  async function expectAction(
    action: Action, reply: { code: number; text: string }, subject: string, verdict: RegExp, used: Relay, logged: RegExp,
  ): Promise<void> {
    const delivered = received(subject);
    switch (action) {
      case 'reject':
      case 'defer': {
        const [code, enhanced, word] = action === 'reject' ? [550, '5.7.1', 'rejected'] : [451, '4.7.1', 'deferred'];
        assert.equal(reply.code, code, reply.text);
        assert.match(reply.text, new RegExp(`^${enhanced.replace(/\./g, '\\.')} Message ${word}${verdict.source}`));
        assert.equal(delivered, undefined, `a ${word} message reached the server`);
        const trace = /^.* \(trace ([0-9A-F-]+\.\d+)\)$/.exec(reply.text)?.[1];
        assert.ok(trace, `no trace id at the end: ${reply.text}`);
        assert.doesNotMatch(reply.text, /\d+\.\d+\.\d+\.\d+|:\d+|\/|ECONN|ENOENT|clamd|spamd|av_scan_obj|did not answer/, reply.text);
        // the summary of that message (the line that follows the reply) carries the id and the whole verdict
        const line = (): string | undefined => used.output().split('\n').find((l) => l.includes(trace) && / action=/.test(l));
        assert.ok(await eventually(() => line() !== undefined, 10_000), `no log line of ${trace}`);
        assert.match(line()!, logged);
        break;
      }
      case 'discard':
        assert.equal(reply.code, 250, reply.text);
        // the relay's own 250: the table's text and the trace id, as the refusals (never the server's "queued as")
        assert.match(reply.text, /^2\.0\.0 Message accepted \(trace [0-9A-F-]+\.\d+\)$/);
        assert.equal(delivered, undefined, 'a discarded message reached the server');
        break;
      case 'accept':
        assert.equal(reply.code, 250, reply.text);
        assert.ok(delivered, 'an accepted message did not reach the server');
        break;
    }
  }

  for (const action of ACTIONS) {
    describe(`every verdict's option set to ${action}`, () => {
      const verdictOptions = {
        action_as: 'scan',
        action_av_infected: action,
        action_av_notscanned: action,
        action_as_spam: action,
        action_as_notscanned: action,
        av_scan_obj_max_size: '1M',
        av_scan_obj_timeout: 2,
      };
      let main: Relay;
      let clamdDown: Relay;
      let clamdStalled: Relay;
      let spamdDown: Relay;

      before(async () => {
        const deadSpamd = `127.0.0.1:${await freePort()}`;
        [main, clamdDown, clamdStalled, spamdDown] = await Promise.all([
          relay(verdictOptions, { spamd_addr: `127.0.0.1:${spamd.port}` }, clamd.socket),
          relay(verdictOptions, { spamd_addr: deadSpamd }, '/nonexistent/clamd.sock'),
          relay(verdictOptions, { spamd_addr: `127.0.0.1:${spamd.port}` }, stalled.socket),
          relay(verdictOptions, { spamd_addr: deadSpamd }, clamd.socket),
        ]);
      });

      it('clean mail is accepted and forwarded with X-Virus-Scanner and X-Spam-Status', async () => {
        const subject = uniqueSubject('clean');
        const reply = await sendOne(main, `Subject: ${subject}\r\nFrom: sender@example.com\r\n\r\nA perfectly ordinary message.\r\n`);
        assert.equal(reply.code, 250);
        const data = received(subject)!.toString('latin1');
        assert.match(data, /^X-Virus-Scanner: esets-relay \S+ \(ClamAV .*\); clean\r$/m);
        assert.match(data, /^X-Spam-Status: No, score=-?[\d.]+ required=[\d.]+ tests=/m);
        assert.match(data, /^X-Spam-Score: -?[\d.]+\r$/m);
      });

      it('EICAR in the body: action_av_infected', async () => {
        const subject = uniqueSubject('eicar body');
        await expectAction(action, await sendOne(main, `Subject: ${subject}\r\n\r\n${EICAR}\r\n`), subject,
          /: virus found \(Eicar-Test-Signature/, main, /av="infected: Eicar-Test-Signature/);
        if (action === 'accept') assert.match(received(subject)!.toString(), /X-Virus-Scanner: .*; infected: Eicar/);
      });

      it('EICAR as a base64 attachment: action_av_infected', async () => {
        const subject = uniqueSubject('eicar attachment');
        await expectAction(action, await sendOne(main, withAttachment(subject, 'eicar.com', Buffer.from(EICAR))), subject,
          /: virus found \(Eicar/, main, /av="infected: Eicar/);
      });

      it('clamav-testfiles clam.zip attached: action_av_infected', async () => {
        const subject = uniqueSubject('clam.zip');
        const zip = fs.readFileSync(path.join(CLAMAV_TESTFILES, 'clam.zip'));
        await expectAction(action, await sendOne(main, withAttachment(subject, 'clam.zip', zip)), subject,
          /: virus found \(ClamAV-Test-File/, main, /av="infected: ClamAV-Test-File/);
      });

      it('clamav-testfiles clam.mail (a mail carrying clam.exe): action_av_infected', async () => {
        const subject = uniqueSubject('clam.mail');
        const mail = fs.readFileSync(path.join(CLAMAV_TESTFILES, 'clam.mail'), 'latin1')
          .replace('Subject: ClamAV Test File', `Subject: ${subject}`);
        await expectAction(action, await sendOne(main, mail), subject, /: virus found \(ClamAV-Test-File/, main, /av="infected: ClamAV-Test-File/);
      });

      it('GTUBE: action_as_spam', async () => {
        const subject = uniqueSubject('gtube');
        await expectAction(action, await sendOne(main, `Subject: ${subject}\r\n\r\n${GTUBE}\r\n`), subject, / as spam, /, main,
          /as="spam \(score 1\d\d\d/);
        if (action === 'accept') assert.match(received(subject)!.toString(), /^X-Spam-Status: Yes, score=1\d\d\d.* tests=.*GTUBE/m);
      });

      it('a message over av_scan_obj_max_size: action_av_notscanned', async () => {
        const subject = uniqueSubject('oversize');
        const body = `${'x'.repeat(998)}\r\n`.repeat(1100);
        await expectAction(action, await sendOne(main, `Subject: ${subject}\r\n\r\n${body}`), subject, NOT_SCANNED, main,
          /av="not scanned: message of \d+ bytes exceeds av_scan_obj_max_size/);
        if (action === 'accept') assert.doesNotMatch(received(subject)!.toString(), /^X-Virus-Scanner:/m);
      });

      it('clamd stopped: action_av_notscanned', async () => {
        const subject = uniqueSubject('clamd down');
        // the reply says "not scanned" and the trace id; the socket path and the errno are the log's
        await expectAction(action, await sendOne(clamdDown, `Subject: ${subject}\r\n\r\nhello\r\n`), subject, NOT_SCANNED, clamdDown,
          /av="not scanned: clamd unavailable .*\/nonexistent\/clamd\.sock.*ENOENT/);
        // X-Virus-Scanner: goes on scanned messages only (the manual): this one was not
        if (action === 'accept') assert.doesNotMatch(received(subject)!.toString(), /^X-Virus-Scanner:/m);
      });

      it('clamd stalled past av_scan_obj_timeout: action_av_notscanned, answered in time', async () => {
        const subject = uniqueSubject('clamd stalled');
        const started = Date.now();
        const reply = await sendOne(clamdStalled, `Subject: ${subject}\r\n\r\nhello\r\n`);
        assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
        await expectAction(action, reply, subject, NOT_SCANNED, clamdStalled, /av="not scanned: clamd.* did not answer within 2 s/);
      });

      it('spamd stopped: action_as_notscanned', async () => {
        const subject = uniqueSubject('spamd down');
        await expectAction(action, await sendOne(spamdDown, `Subject: ${subject}\r\n\r\nhello\r\n`), subject,
          /: it could not be checked for spam, /, spamdDown, /as="not scanned: spamd 127\.0\.0\.1:\d+/);
        if (action === 'accept') assert.doesNotMatch(received(subject)!.toString(), /^X-Spam-Status:/m);
      });
    });
  }

  describe('cleaning (av_clean_mode)', () => {
    it('standard: the infected attachment of clam.mail is replaced by a notice, the text part is intact', async () => {
      const r = await relay({ av_clean_mode: 'standard' }, {}, clamd.socket);
      const subject = uniqueSubject('clean me');
      const original = fs.readFileSync(path.join(CLAMAV_TESTFILES, 'clam.mail'), 'latin1').replace(/\r?\n/g, '\r\n')
        .replace('Subject: ClamAV Test File', `Subject: ${subject}`);
      const reply = await sendOne(r, original);
      assert.equal(reply.code, 250, reply.text);
      const data = received(subject)!.toString('latin1');
      assert.match(data, /^X-Virus-Scanner: .*; cleaned: 1 part removed \(ClamAV-Test-File/m);
      assert.ok(data.includes('Content-Type: text/plain; charset=US-ASCII\r\nContent-Transfer-Encoding: 7bit\r\n'
        + 'Content-Disposition: inline\r\n\r\nThis is a ClamAV test file with embedded clam.exe\r\n--MP_'), 'text part changed');
      assert.match(data, /The attachment "clam\.exe" was infected with ClamAV-Test-File\S* and has been removed by esets-relay/);
      assert.doesNotMatch(data, /TVpQAAIAAAAEAA8A/, 'the infected attachment is still there');
      assert.match(data, /--MP_\/6OvrPH9HEPZRUCVu6uT=Fey--/, 'the closing boundary is gone');
    });

    it('action_av_deleted applies to a cleaned message', async () => {
      const r = await relay({ av_clean_mode: 'standard', action_av_deleted: 'reject' }, {}, clamd.socket);
      const reply = await sendOne(r, fs.readFileSync(path.join(CLAMAV_TESTFILES, 'clam.mail'), 'latin1'));
      assert.equal(reply.code, 550);
      assert.match(reply.text, /^5\.7\.1 Message rejected: virus found \(ClamAV-Test-File/);
      // the reply names the virus; the log line of its trace id says the message was cleaned
      const trace = /\(trace ([^)]+)\)$/.exec(reply.text)![1];
      assert.ok(await eventually(() => r.output().split('\n').some((l) => l.includes(trace) && /av="cleaned: 1 part removed/.test(l)), 10_000),
        r.output());
    });

    it('an infection in the message body itself cannot be removed: action_av_infected', async () => {
      const r = await relay({ av_clean_mode: 'rigorous' }, {}, clamd.socket);
      const reply = await sendOne(r, `Subject: body\r\n\r\n${EICAR}\r\n`);
      assert.equal(reply.code, 550);
      assert.match(reply.text, /virus found \(Eicar/);
    });

    it('is bounded in parts (av_clean_max_parts): over the bound the message stays infected, at or under it is cleaned', async () => {
      const message = (subject: string, parts: number): string => [
        `Subject: ${subject}`, 'Content-Type: multipart/mixed; boundary="b"', '',
        ...Array.from({ length: parts - 1 }, (_, i) => ['--b', 'Content-Type: text/plain', '', `clean part ${i}`]).flat(),
        '--b', 'Content-Type: application/octet-stream', 'Content-Disposition: attachment; filename="eicar.com"', '', EICAR,
        '--b--', '',
      ].join('\r\n');
      const bounded = await relay({ av_clean_mode: 'standard', av_clean_max_parts: 5 }, {}, clamd.socket);
      const over = await sendOne(bounded, message(uniqueSubject('six parts'), 6));
      assert.equal(over.code, 550, over.text);
      assert.match(over.text, /virus found \(Eicar/);
      const subject = uniqueSubject('five parts');
      const under = await sendOne(bounded, message(subject, 5));
      assert.equal(under.code, 250, under.text);
      assert.match(received(subject)!.toString('latin1'), /X-Virus-Scanner: .*; cleaned: 1 part removed/);
    });

    it('a message over 16 MiB is not rebuilt (memory per message bounded): it stays infected', async () => {
      const message = (subject: string, fill: number): string => [
        `Subject: ${subject}`, 'Content-Type: multipart/mixed; boundary="b"', '',
        '--b', 'Content-Type: text/plain', '', `${'f'.repeat(70)}\r\n`.repeat(Math.ceil(fill / 72)),
        '--b', 'Content-Type: application/octet-stream', 'Content-Disposition: attachment; filename="eicar.com"', '', EICAR,
        '--b--', '',
      ].join('\r\n');
      const cleaning = await relay({ av_clean_mode: 'standard' }, {}, clamd.socket);
      const small = uniqueSubject('clean small');
      assert.equal((await sendOne(cleaning, message(small, 1000))).code, 250);
      const big = await sendOne(cleaning, message(uniqueSubject('clean big'), CLEAN_MAX_BYTES + 1000));
      assert.equal(big.code, 550, big.text);
      assert.match(big.text, /virus found \(Eicar/);
    });

    it('standard does not remove an infected inline text part; rigorous does', async () => {
      const message = (subject: string): string => [
        `Subject: ${subject}`, 'Content-Type: multipart/mixed; boundary="b"', '',
        '--b', 'Content-Type: text/plain', '', 'clean words', '--b', 'Content-Type: text/plain', '', EICAR, '--b--', '',
      ].join('\r\n');
      const standard = await relay({ av_clean_mode: 'standard' }, {}, clamd.socket);
      assert.equal((await sendOne(standard, message(uniqueSubject('inline std')))).code, 550);
      const rigorous = await relay({ av_clean_mode: 'rigorous' }, {}, clamd.socket);
      const subject = uniqueSubject('inline rig');
      assert.equal((await sendOne(rigorous, message(subject))).code, 250);
      const data = received(subject)!.toString('latin1');
      assert.match(data, /clean words/);
      assert.doesNotMatch(data, /EICAR-STANDARD/);
    });
  });
});
