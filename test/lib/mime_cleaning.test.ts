import assert from 'node:assert/strict';
import { isRemovable, removalNotice } from '../../src/lib/cleaning';
import { decodedBody, decodeQuotedPrintable, leafParts, parseMime, replaceParts } from '../../src/lib/mime_tree';

const MESSAGE = Buffer.from([
  'From: a@example.com',
  'Content-Type: multipart/mixed;',
  ' boundary="outer"',
  '',
  'preamble',
  '--outer',
  'Content-Type: multipart/alternative; boundary=inner',
  '',
  '--inner',
  'Content-Type: text/plain',
  '',
  'plain text',
  '--inner',
  'Content-Type: text/html',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  '<p>caf=C3=A9 =',
  'soft</p>',
  '--inner--',
  '--outer',
  'Content-Type: application/octet-stream; name="virus.com"',
  'Content-Disposition: attachment; filename="virus.com"',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from('payload bytes').toString('base64'),
  '--outer',
  'Content-Type: image/png',
  '',
  'PNGDATA',
  '--outer--',
  'epilogue',
  '',
].join('\r\n'), 'latin1');

describe('MIME tree', () => {
  const root = parseMime(MESSAGE);
  const leaves = leafParts(root);

  it('finds nested parts with their types, encodings and filenames', () => {
    assert.equal(root.contentType, 'multipart/mixed');
    assert.equal(root.boundary, 'outer');
    assert.deepEqual(leaves.map((p) => [p.path, p.contentType, p.transferEncoding, p.filename]), [
      ['1.1.1', 'text/plain', '7bit', undefined],
      ['1.1.2', 'text/html', 'quoted-printable', undefined],
      ['1.2', 'application/octet-stream', 'base64', 'virus.com'],
      ['1.3', 'image/png', '7bit', undefined],
    ]);
  });

  it('gives each part body without the CRLF that belongs to the next boundary', () => {
    assert.equal(MESSAGE.toString('latin1', leaves[0].bodyStart, leaves[0].end), 'plain text');
    assert.equal(MESSAGE.toString('latin1', leaves[3].bodyStart, leaves[3].end), 'PNGDATA');
  });

  it('decodes base64 and quoted-printable bodies', () => {
    assert.equal(decodedBody(MESSAGE, leaves[2]).toString(), 'payload bytes');
    assert.equal(decodedBody(MESSAGE, leaves[1]).toString('utf8'), '<p>café soft</p>');
    assert.equal(decodeQuotedPrintable(Buffer.from('a=3Db=\r\nc=ZZ')).toString(), 'a=bc=ZZ');
  });

  it('replaces a part and leaves every other byte as it was', () => {
    const replaced = replaceParts(MESSAGE, new Map([[leaves[2], Buffer.from('Content-Type: text/plain\r\n\r\nremoved')]]));
    const expected = MESSAGE.toString('latin1').replace(/Content-Type: application\/octet-stream[\s\S]*?(?=\r\n--outer\r\nContent-Type: image)/, 'Content-Type: text/plain\r\n\r\nremoved');
    assert.equal(replaced.toString('latin1'), expected);
    assert.deepEqual(leafParts(parseMime(replaced)).map((p) => p.contentType), ['text/plain', 'text/html', 'text/plain', 'image/png']);
  });

  it('treats a message that is not multipart as a single part, body after the blank line', () => {
    const single = parseMime(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    assert.deepEqual(leafParts(single), [single]);
    assert.equal(single.bodyStart, 14);
  });

  it('survives broken MIME: no closing boundary, no boundary parameter, endless nesting', () => {
    const open = parseMime(Buffer.from('Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n'));
    assert.equal(leafParts(open).length, 1);
    assert.equal(leafParts(parseMime(Buffer.from('Content-Type: multipart/mixed\r\n\r\nx'))).length, 1);
    let nested = 'x';
    for (let i = 0; i < 100; i++) nested = `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n${nested}\r\n--b${i}--`;
    assert.ok(leafParts(parseMime(Buffer.from(nested))).length >= 1);
  });
});

describe('av_clean_mode', () => {
  const root = parseMime(MESSAGE);
  const [plain, , attachment, image] = leafParts(root);

  it('never removes the message itself', () => {
    for (const mode of ['standard', 'strict', 'rigorous', 'delete'] as const) assert.equal(isRemovable(root, root, mode), false);
  });

  it('standard removes attachments only; strict also inline non-text parts; rigorous and delete any part; none nothing', () => {
    const table: [string, boolean, boolean, boolean][] = [
      ['none', false, false, false],
      ['standard', true, false, false],
      ['strict', true, true, false],
      ['rigorous', true, true, true],
      ['delete', true, true, true],
    ];
    for (const [mode, a, i, p] of table) {
      const m = mode as 'none' | 'standard' | 'strict' | 'rigorous' | 'delete';
      assert.deepEqual([isRemovable(attachment, root, m), isRemovable(image, root, m), isRemovable(plain, root, m)], [a, i, p], mode);
    }
  });

  it('leaves a plain-text notice naming the file and the threat', () => {
    const notice = removalNotice({ part: attachment, names: ['Eicar-Test-Signature'] }, 'esets-relay 1.0').toString();
    assert.match(notice, /^Content-Type: text\/plain; charset=us-ascii\r\n/);
    assert.match(notice, /The attachment "virus\.com" was infected with Eicar-Test-Signature and has been removed by esets-relay 1\.0\.$/);
  });
});
