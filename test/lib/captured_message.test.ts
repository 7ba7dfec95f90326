// The relay's copy of a message (src/io): un-stuffed once, in memory and then
// in a private spool file, read back byte for byte.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CapturedMessage } from '../../src/io/captured_message';
import { spoolDir } from '../../src/io/process_dirs';

describe('captured message', () => {
  it('keeps the un-stuffed bytes, finds the end of the header and the first bare CR', async () => {
    const m = new CapturedMessage(os.tmpdir());
    for (const l of ['Subject: x\r\n', '\r\n', '..two\r\n', '.one\r\n', 'cr\ralone\r\n', 'end\r\n']) m.addLine(Buffer.from(l));
    m.end();
    assert.equal((await m.readAll()).toString(), 'Subject: x\r\n\r\n.two\r\none\r\ncr\ralone\r\nend\r\n');
    assert.equal((await m.readAll(0, m.headerEnd)).toString(), 'Subject: x\r\n');
    assert.equal(m.malformed, 'bare CR in line 5 (lines must end in CRLF)');
  });

  it('refuses a header section where a line that is not a field follows a field (no empty line ends the header)', () => {
    const lines = (ls: string[]): CapturedMessage => {
      const m = new CapturedMessage(os.tmpdir());
      for (const l of ls) m.addLine(Buffer.from(`${l}\r\n`));
      m.end();
      return m;
    };
    // Postfix takes the base64 line as the start of the body (its MIME header then the message's); a scanner may not
    const hidden = lines(['Subject: x', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', 'WDVPIVAl']);
    assert.equal(
      hidden.malformed,
      'line 4 is not a header field, and no empty line ends the header before it (read differently by scanners and mail servers)',
    );
    assert.equal(hidden.headerLineCount, 4);
    // fields, continuations, obsolete blanks before the colon, a header-only message, a message without a header: fine
    assert.equal(lines(['Subject: x', ' folded', 'X-Old : y', '', 'WDVPIVAl']).malformed, undefined);
    assert.equal(lines(['Subject: x', 'To: y']).malformed, undefined);
    assert.equal(lines(['just a body', 'Content-Type: text/plain']).malformed, undefined);
    // a continuation of no field of the client's (Postfix starts the body there, some readers skip it), and a line
    // that is no field after an mbox "From " line (Postfix: X-Mailbox-Line:, then the body): refused
    assert.match(lines([' x', 'Content-Type: message/rfc822', '', 'begin 644 a']).malformed!, /^line 1 continues no header field/);
    assert.match(lines(['\tx', 'Subject: y']).malformed!, /^line 1 continues no header field/);
    assert.match(lines(['From a@b Mon Jan  1 00:00:00 2024', 'garbage', 'Content-Type: message/rfc822']).malformed!, /^line 2 is not a header field/);
    assert.match(lines(['From a@b Mon Jan  1 00:00:00 2024', ' x', 'Subject: y']).malformed!, /^line 2 continues no header field/);
    assert.equal(lines(['From a@b Mon Jan  1 00:00:00 2024', 'Subject: y', ' folded', '', 'body']).malformed, undefined);
    // after the empty line, anything goes
    assert.equal(lines(['Subject: x', '', 'not: a header', 'plain']).malformed, undefined);
  });

  it('a first line that is no field starts the body: no header section (headerless), the header ends before it', async () => {
    const m = new CapturedMessage(os.tmpdir());
    for (const l of ['just a body\r\n', 'Subject: not a header here\r\n', 'plain\r\n']) m.addLine(Buffer.from(l));
    m.end();
    assert.equal(m.headerless, true);
    assert.equal(m.headerEnd, 0);
    assert.equal(m.malformed, undefined);
    assert.equal(m.headerLineCount, 3, 'Haraka takes every line before the first empty one as header');
    // after the relay's own Received: line, the same
    const r = new CapturedMessage(os.tmpdir());
    r.prepend(Buffer.from('Received: from a\r\n'));
    r.addLine(Buffer.from('only a body\r\n'));
    r.end();
    assert.equal(r.headerless, true);
    assert.equal((await r.readAll(0, r.headerEnd)).toString(), 'Received: from a\r\n');
    // what the scanners read: the split the server gets, the empty line after the header
    assert.equal((await r.readAllAsSent()).toString(), 'Received: from a\r\n\r\nonly a body\r\n');
    assert.equal((await r.readAll()).toString(), 'Received: from a\r\nonly a body\r\n', 'the captured bytes stay as sent');
    // an mbox "From " line is an envelope line to readers: the header goes on after it
    const mbox = new CapturedMessage(os.tmpdir());
    for (const l of ['From a@example.com Sat Dec  5 10:00:00 2026\r\n', 'Subject: x\r\n', '\r\n', 'body\r\n']) mbox.addLine(Buffer.from(l));
    mbox.end();
    assert.equal(mbox.headerless, false);
    assert.equal((await mbox.readAll(0, mbox.headerEnd)).toString(), 'From a@example.com Sat Dec  5 10:00:00 2026\r\nSubject: x\r\n');
  });

  it('notes the first line sent with a single leading dot (the relay removes it; Haraka\'s own copy keeps it)', () => {
    const m = new CapturedMessage(os.tmpdir());
    for (const l of ['Subject: x\r\n', '\r\n', '..doubled\r\n', '.Content-Transfer-Encoding: base64\r\n']) m.addLine(Buffer.from(l));
    assert.equal(m.leadingDotLine, 4);
    const ok = new CapturedMessage(os.tmpdir());
    for (const l of ['Subject: x\r\n', '\r\n', '..doubled\r\n', 'a.b\r\n']) ok.addLine(Buffer.from(l));
    assert.equal(ok.leadingDotLine, undefined);
  });

  it('spools past its memory limit to a private file (0600 in a 0700 folder) and removes it', async () => {
    const dir = spoolDir();
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    const m = new CapturedMessage(dir, 1000);
    const line = `${'x'.repeat(98)}\r\n`;
    for (let i = 0; i < 100; i++) m.addLine(Buffer.from(i === 0 ? 'Subject: big\r\n' : i === 1 ? '\r\n' : line));
    m.end();
    const files = fs.readdirSync(dir);
    assert.equal(files.length, 1);
    assert.equal(fs.statSync(path.join(dir, files[0])).mode & 0o777, 0o600);
    const all = await m.readAll();
    assert.equal(all.length, m.size);
    assert.equal((await m.readAll(5, 20)).toString(), all.subarray(5, 20).toString());
    m.destroy();
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('past its size limit keeps nothing more: frees what it held, feeds no listener, counts on, and reads as an error', async () => {
    const dir = spoolDir();
    const m = new CapturedMessage(dir, 1000, 5000);
    let heard = 0;
    m.onLine(() => { heard++; });
    const line = `${'x'.repeat(98)}\r\n`;
    m.addLine(Buffer.from('Subject: big\r\n'));
    m.addLine(Buffer.from('\r\n'));
    for (let i = 0; i < 48; i++) m.addLine(Buffer.from(line));
    assert.equal(m.failure, undefined);
    // on disk by now (over the 1000-byte memory limit)
    assert.equal(fs.readdirSync(dir).length, 1);
    for (let i = 0; i < 100; i++) m.addLine(Buffer.from(line));
    assert.deepEqual(m.failure, { kind: 'too_big', limit: 5000 });
    assert.deepEqual(fs.readdirSync(dir), [], 'the spool file is removed at once');
    assert.ok(heard < 52, `the live scan got ${heard} lines`);
    assert.equal(m.size, 16 + 148 * 100);
    m.end();
    await assert.rejects(m.readAll(), /not kept/);
    m.destroy();
  });

  it('counts the client\'s bytes as RFC 1870 does: un-stuffed, the relay\'s own lines apart', () => {
    const m = new CapturedMessage(os.tmpdir(), 1000, 30);
    m.prepend(Buffer.from(`Received: ${'r'.repeat(100)}\r\n`));
    m.addLine(Buffer.from('Subject: a\r\n'));
    m.addLine(Buffer.from('\r\n'));
    m.addLine(Buffer.from('..twelve..\r\n'));
    // 12 + 2 + 11 (the stuffed dot not counted) = 25 of 30
    assert.equal(m.failure, undefined);
    m.addLine(Buffer.from('123456\r\n'));
    assert.equal((m as { failure?: { kind: string } }).failure?.kind, 'too_big');
    m.destroy();
  });

  it('a spool that cannot be written fails the message, never the caller', async () => {
    const m = new CapturedMessage(path.join(os.tmpdir(), `no-such-spool-${process.pid}`), 100);
    for (let i = 0; i < 10; i++) m.addLine(Buffer.from(i === 1 ? '\r\n' : `Line-${i}: ${'y'.repeat(40)}\r\n`));
    assert.equal(m.failure?.kind, 'spool_error');
    assert.match((m.failure as { reason: string }).reason, /spool write failed: ENOENT/);
    m.end();
    await assert.rejects(m.readAll(), /not kept/);
    m.destroy();
  });

  it('a spool folder removed under the process (a tmp cleaner) is made again, private, for the next message', async () => {
    const first = spoolDir();
    fs.rmSync(first, { recursive: true, force: true });
    const again = spoolDir();
    assert.notEqual(again, first);
    assert.equal(fs.statSync(again).mode & 0o777, 0o700);
    const m = new CapturedMessage(again, 10);
    for (const l of ['Subject: a\r\n', '\r\n', 'body line\r\n']) m.addLine(Buffer.from(l));
    m.end();
    assert.equal(m.failure, undefined);
    assert.equal((await m.readAll()).toString(), 'Subject: a\r\n\r\nbody line\r\n');
    m.destroy();
  });
});
