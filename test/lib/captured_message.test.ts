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
    // after the empty line, anything goes
    assert.equal(lines(['Subject: x', '', 'not: a header', 'plain']).malformed, undefined);
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
});
