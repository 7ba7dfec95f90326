// Content beyond clamd's limits, with a real clamd configured by the shipped
// snippet config/clamd-esets-relay.conf: deferred as "not scanned" (or found,
// where the relay's own scan of a part is within them), never delivered as
// clean. The same messages through a clamd whose only change is
// "AlertExceedsMax no" (clamd's default) show what the relay's own MIME walk
// still prevents; and the relay says so at start when clamd_config names such a
// clamd.conf.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Clamd, CLAMD_SNIPPET, EICAR, startClamd } from '../support/clamd';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';
import { withSummary } from '../support/relay_reply';
import { paddedMember, zip } from '../support/zip';

const base64 = (data: Buffer): string => data.toString('base64').replace(/.{76}/g, '$&\r\n');

/** EICAR as a base64 attachment: only clamd's MIME decoding finds it (not a search of the raw bytes). */
function withEicar(subject: string): string {
  return `Subject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="e"\r\n\r\n`
    + '--e\r\nContent-Type: text/plain\r\n\r\ninner\r\n'
    + '--e\r\nContent-Type: application/octet-stream; name="eicar.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    + `${base64(Buffer.from(EICAR))}\r\n--e--\r\n`;
}

/** 20 messages each attached (message/rfc822) to the one around it, EICAR in the innermost. */
function nestedMessages(subject: string, depth = 20): string {
  let m = withEicar('innermost');
  for (let i = 0; i < depth; i++) {
    m = `Subject: ${i === depth - 1 ? subject : `layer ${i}`}\r\n`
      + `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="m${i}"\r\n\r\n`
      + `--m${i}\r\nContent-Type: text/plain\r\n\r\nforwarded\r\n--m${i}\r\nContent-Type: message/rfc822\r\n\r\n${m}\r\n--m${i}--\r\n`;
  }
  return m;
}

/** A zip in a zip ... 16 deep, EICAR in the innermost, attached. */
function nestedZips(subject: string, depth = 16): string {
  let archive = zip([{ name: 'eicar.com', data: Buffer.from(EICAR) }]);
  for (let i = 1; i < depth; i++) archive = zip([{ name: `level${i}.zip`, data: archive }]);
  return `Subject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="z"\r\n\r\n`
    + '--z\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n'
    + `--z\r\nContent-Type: application/zip; name="nested.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64(archive)}\r\n--z--\r\n`;
}

/** 20,001 MIME parts, EICAR (base64) in the last one. */
function manyParts(subject: string, count = 20_001): string {
  const parts: string[] = [];
  for (let i = 0; i < count - 1; i++) parts.push(`--p\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`);
  parts.push('--p\r\nContent-Type: application/octet-stream; name="eicar.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    + `${base64(Buffer.from(EICAR))}\r\n`);
  return `Subject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n${parts.join('')}--p--\r\n`;
}

/** A zip attachment (a few hundred KB) whose one member is `paddingMiB` MiB of padding, then EICAR. */
function paddedZip(subject: string, paddingMiB: number): string {
  const archive = zip([paddedMember('padded.bin', paddingMiB, Buffer.from(EICAR))]);
  return `Subject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="z"\r\n\r\n`
    + '--z\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n'
    + `--z\r\nContent-Type: application/zip; name="padded.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n${base64(archive)}\r\n--z--\r\n`;
}

interface LimitCase {
  name: string;
  build: (subject: string) => string;
  /** the reply with the snippet's clamd (AlertExceedsMax yes) */
  guarded: RegExp;
  /** the reply with AlertExceedsMax no: what the relay's own walk still answers, where clamd alone says clean */
  unguarded: RegExp;
}

const CASES: LimitCase[] = [
  {
    name: '20 nested message/rfc822', build: nestedMessages,
    guarded: /^4\.7\.1 .*not scanned: clamd: Heuristics\.Limits\.Exceeded\.MaxRecursion/,
    unguarded: /^4\.7\.1 .*not scanned: MIME parts nested deeper than 17 \(clamd MaxRecursion\)/,
  },
  {
    // the relay opens archives itself (docs/containers.md): EICAR 16 zips deep is found, whatever clamd's limits say
    name: 'a zip nested 16 deep', build: nestedZips,
    // (the path of archives inside one another: the reply's detail and the log line are bounded, the outer ones are said)
    guarded: /^5\.7\.1 Message rejected: virus found \(Eicar.*"nested\.zip" > "level15\.zip" > "level14\.zip".* \|\| log: .* av="infected: Eicar/,
    unguarded: /^5\.7\.1 Message rejected: virus found \(Eicar.*"nested\.zip" > "level15\.zip" > "level14\.zip".* \|\| log: .* av="infected: Eicar/,
  },
  {
    name: '20,001 MIME parts', build: manyParts,
    guarded: /^4\.7\.1 .*not scanned: clamd: Heuristics\.Limits\.Exceeded\.MaxFiles/,
    unguarded: /^4\.7\.1 .*not scanned: more than 10000 MIME parts \(clamd MaxFiles\)/,
  },
];

describe("content beyond clamd's limits (clamd with config/clamd-esets-relay.conf)", function () {
  this.timeout(240_000);
  let clamd: Clamd;
  let lenient: Clamd;
  let sink: Sink;
  let relay: Relay;
  let unguarded: Relay;

  before(async () => {
    const noAlert = fs.readFileSync(CLAMD_SNIPPET, 'utf8').replace(/^AlertExceedsMax yes$/m, 'AlertExceedsMax no');
    assert.match(noAlert, /^AlertExceedsMax no$/m);
    [clamd, lenient] = await Promise.all([startClamd(), startClamd(undefined, false, noAlert)]);
    sink = new Sink();
    await sink.start();
    const [port, port2] = [await freePort(), await freePort()];
    const cfg = (p: number, c: Clamd): string => writeEsetsCfg(esetsCfg(p, {
      serverPort: sink.port, clamdSocket: c.socket, global: { clamd_config: `"${path.join(c.dir, 'clamd.conf')}"` },
    }));
    [relay, unguarded] = await Promise.all([
      startRelay(['--config', cfg(port, clamd)], port),
      startRelay(['--config', cfg(port2, lenient)], port2),
    ]);
  });

  after(async () => {
    await Promise.all([relay?.stop(), unguarded?.stop()]);
    await Promise.all([sink?.stop(), clamd?.stop(), lenient?.stop()]);
  });

  async function send(through: Relay, subject: string, text: string): Promise<{ code: number; text: string; delivered: boolean }> {
    const client = await SmtpTestClient.connect(through.port);
    await client.read();
    await client.command('EHLO client.example');
    assert.equal((await client.command('MAIL FROM:<a@example.com>')).code, 250);
    assert.equal((await client.command('RCPT TO:<user@example.org>')).code, 250);
    const reply = await client.data(text, 120_000);
    client.end();
    const delivered = sink.messages.some((m) => m.data.toString('latin1').includes(`Subject: ${subject}\r\n`));
    // a refusal's reason (clamd's words, the limit) is in the summary line of its trace id, not in the reply
    return { code: reply.code, text: await withSummary(through.output, reply.lines.join(' ')), delivered };
  }

  for (const { name, build, guarded, unguarded: lenientReply } of CASES) {
    it(`${name}: ${guarded.source.startsWith('^5') ? 'rejected as infected' : 'deferred as not scanned'}, never delivered`, async () => {
      const subject = `limits-${name.replace(/\W+/g, '-')}`;
      const r = await send(relay, subject, build(subject));
      assert.match(r.text, guarded);
      assert.equal(r.code, guarded.source.startsWith('^5') ? 550 : 451, r.text);
      assert.equal(r.delivered, false);
    });

    it(`${name}: with clamd's default AlertExceedsMax no, still never delivered (the relay's own walk)`, async () => {
      const subject = `unguarded-${name.replace(/\W+/g, '-')}`;
      const r = await send(unguarded, subject, build(subject));
      assert.match(r.text, lenientReply);
      assert.equal(r.delivered, false);
    });
  }

  // clamd cuts a compressed zip member at MaxFileSize and scans the part it kept, with no alert
  // (libclamav unzip.c): the snippet's MaxFileSize above MaxScanSize makes that cut trip MaxScanSize
  it('rejects a zip member padded to 101 MB with EICAR at its end (550): the snippet\'s MaxFileSize scans it whole', async () => {
    const r = await send(relay, 'padded-101', paddedZip('padded-101', 101));
    assert.equal(r.code, 550, r.text);
    assert.match(r.text, /^5\.7\.1 .*infected: Eicar/);
    assert.equal(r.delivered, false);
  });

  it('defers a zip member padded past MaxScanSize (450 MB) as not scanned (451), and does not deliver it', async () => {
    const r = await send(relay, 'padded-450', paddedZip('padded-450', 450));
    assert.equal(r.code, 451, r.text);
    assert.match(r.text, /^4\.7\.1 .*not scanned: clamd: Heuristics\.Limits\.Exceeded\.MaxScanSize/);
    assert.equal(r.delivered, false);
  });

  it('with MaxFileSize 100M (not above MaxScanSize), the 101 MB padded zip is not scanned (the relay keeps MaxFileSize too); '
    + 'the relay warns at start', async () => {
    const cut = fs.readFileSync(CLAMD_SNIPPET, 'utf8').replace(/^MaxFileSize 401M$/m, 'MaxFileSize 100M');
    assert.match(cut, /^MaxFileSize 100M$/m);
    const cutClamd = await startClamd(undefined, false, cut);
    let cutRelay: Relay | undefined;
    try {
      const port = await freePort();
      const conf = path.join(cutClamd.dir, 'clamd.conf');
      cutRelay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, {
        serverPort: sink.port, clamdSocket: cutClamd.socket, global: { clamd_config: `"${conf}"` },
      }))], port);
      const r = await send(cutRelay, 'padded-cut', paddedZip('padded-cut', 101));
      assert.equal(r.code, 451, r.text);
      assert.match(r.text, /not scanned: .*larger than 104857600 bytes \(clamd MaxFileSize\)/);
      assert.equal(r.delivered, false);
      const line = fs.readFileSync(conf, 'utf8').split('\n').indexOf('MaxFileSize 100M') + 1;
      assert.match(cutRelay.output(), new RegExp(`${conf.replace(/[.\\/]/g, '\\$&')}:${line}: warning: MaxFileSize 100M is not above MaxScanSize 400M: clamd cuts a compressed zip member at MaxFileSize .* set "MaxFileSize 401M"`));
    } finally {
      await cutRelay?.stop();
      await cutClamd.stop();
    }
  });

  it('warns at start, naming the file, the line and the fix, when clamd_config lacks AlertExceedsMax; says nothing when it has it', () => {
    const conf = path.join(lenient.dir, 'clamd.conf');
    const line = fs.readFileSync(conf, 'utf8').split('\n').indexOf('AlertExceedsMax no') + 1;
    assert.match(unguarded.output(), new RegExp(`${conf.replace(/[.\\/]/g, '\\$&')}:${line}: warning: "AlertExceedsMax no": content beyond clamd's limits .* is reported clean; change this line to "AlertExceedsMax yes"`));
    assert.equal(unguarded.output().split('"AlertExceedsMax no"').length - 1, 1, 'once, not once per process');
    assert.doesNotMatch(relay.output(), /clamd\.conf(:\d+)?: warning/);
  });
});
