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
