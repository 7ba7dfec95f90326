import assert from 'node:assert/strict';
import {
  DotStuffer, editHeaderSection, fieldName, hasBareCr, hasBareLf, HeaderBlocks, headerLineKind, headerViewLine, isScannerField,
  unstuffLine,
} from '../../src/lib/smtp_data';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('SMTP DATA bytes (RFC 5321 4.5.2)', () => {
  it('removes the first dot of any line that starts with one, not only of ".." lines', () => {
    assert.equal(unstuffLine(b('..stuffed\r\n')).toString(), '.stuffed\r\n');
    assert.equal(unstuffLine(b('.Content-Transfer-Encoding: base64\r\n')).toString(), 'Content-Transfer-Encoding: base64\r\n');
    assert.equal(unstuffLine(b('.\r\n')).toString(), '\r\n');
    assert.equal(unstuffLine(b('plain.\r\n')).toString(), 'plain.\r\n');
  });

  it('finds a CR that does not end a line, and an LF without its CR', () => {
    assert.equal(hasBareCr(b('fine\r\n')), false);
    assert.equal(hasBareCr(b('.\r\r\n')), true, '.CR CRLF: end of data for some servers');
    assert.equal(hasBareCr(b('Subject: a\rb\r\n')), true);
    assert.equal(hasBareCr(b('no ending\r')), true);
    assert.equal(hasBareLf(b('fine\r\n')), false);
    assert.equal(hasBareLf(b('bare\n')), true);
    assert.equal(hasBareLf(b('a\nb\r\n')), true);
  });

  it('stuffs again on the way out, across chunk boundaries, and ends with one dot', () => {
    const stuffer = new DotStuffer();
    const out = Buffer.concat([b('.a\r\n'), b('b\r'), b('\n'), b('.'), b('c\r\n.\r\n'), b('..d\r\nlast')].map((c) => stuffer.stuff(c)));
    assert.equal(out.toString(), '..a\r\nb\r\n..c\r\n..\r\n...d\r\nlast');
    assert.equal(stuffer.end().toString(), '\r\n.\r\n', 'a CRLF for the unterminated last line');
    const ended = new DotStuffer();
    ended.stuff(b('x\r\n'));
    assert.equal(ended.end().toString(), '.\r\n');
  });

  it('un-stuffing then stuffing gives back what a conforming client sent', () => {
    const sent = ['Subject: x\r\n', '\r\n', '..one\r\n', '...two\r\n', 'plain\r\n'];
    const stuffer = new DotStuffer();
    const out = sent.map((l) => stuffer.stuff(unstuffLine(b(l)))).map((x) => x.toString()).join('');
    assert.equal(out, sent.join(''));
  });

  it('reads a field name as mail readers do: blanks before the colon do not hide it', () => {
    assert.equal(fieldName('X-Virus-Scanner: x'), 'x-virus-scanner');
    assert.equal(fieldName('X-Virus-Scanner : spoof'), 'x-virus-scanner');
    assert.equal(fieldName('X-Virus-Scanner\t: spoof'), 'x-virus-scanner');
    assert.equal(fieldName(' continued'), undefined);
    assert.equal(fieldName('no colon here'), undefined);
  });

  it('drops fields with their continuation lines, keeps every other byte in order, and appends ours', () => {
    const header = b('Received: from a\r\n\tby b\r\nX-Virus-Scanner : spoof; clean\r\n folded on\r\nX-Spam-Status: No\r\n'
      + 'Authentication-Results: mx; dkim=pass\r\nSubject: hi\r\n');
    const out = editHeaderSection(header, (n) => n === 'x-virus-scanner' || n.startsWith('x-spam-'), [
      { name: 'X-Virus-Scanner', value: 'ours; clean' },
    ]);
    assert.equal(out.toString(), 'Received: from a\r\n\tby b\r\nAuthentication-Results: mx; dkim=pass\r\nSubject: hi\r\n'
      + 'X-Virus-Scanner: ours; clean\r\n');
  });

  it('keeps a line that is no field and no continuation, even after a removed field', () => {
    const out = editHeaderSection(b('X-Spam-Flag: NO\r\nNOT A HEADER\r\nSubject: x\r\n'), (n) => n.startsWith('x-spam-'), []);
    assert.equal(out.toString(), 'NOT A HEADER\r\nSubject: x\r\n');
  });

  it('a message without a header section: our fields, then the empty line that starts its body; nothing added, nothing at all', () => {
    const ours = [{ name: 'X-Virus-Scanner', value: 'ours; clean' }];
    assert.equal(editHeaderSection(b(''), isScannerField, ours, true).toString(), 'X-Virus-Scanner: ours; clean\r\n\r\n');
    assert.equal(
      editHeaderSection(b('Received: from a\r\n'), isScannerField, ours, true).toString(),
      'Received: from a\r\nX-Virus-Scanner: ours; clean\r\n\r\n',
    );
    assert.equal(editHeaderSection(b(''), isScannerField, [], true).toString(), '');
  });

  it('one rule for the scanner fields: X-Virus-Scanner and every X-Spam-*, nothing else', () => {
    for (const name of ['x-virus-scanner', 'x-spam-status', 'x-spam-report', 'x-spam-checker-version', 'x-spam-']) {
      assert.ok(isScannerField(name), name);
    }
    for (const name of ['x-virus', 'x-spamd-result', 'x-haraka-virus', 'subject', 'x-virus-scanner-x']) {
      assert.ok(!isScannerField(name), name);
    }
  });

});

describe('header blocks (blank-only lines that hide a part header from clamd)', () => {
  const scan = (lines: string[]): number[] => {
    const blocks = new HeaderBlocks();
    return lines.flatMap((l, i) => (blocks.hidesEncoding(Buffer.from(`${l}\r\n`)) ? [i] : []));
  };

  it('finds a blank-only line in the top header and in a MIME part header, not in bodies', () => {
    assert.deepEqual(scan([
      'Subject: x', ' ', '', 'body', ' ', '--b', 'Content-Type: a/b', 'X: 1', '\t', 'Content-Transfer-Encoding: base64', '', 'QUJD', ' ',
    ]), [1, 8]);
  });

  it('takes a "-- " signature line followed by text as body', () => {
    assert.deepEqual(scan(['Subject: x', '', 'hi', '-- ', 'John', ' ', '']), []);
  });
});

describe('headerLineKind', () => {
  it('tells a field, a continuation and anything else apart', () => {
    const kind = (t: string): string => headerLineKind(Buffer.from(`${t}\r\n`));
    assert.equal(kind('Subject: x'), 'field');
    assert.equal(kind('X-Old \t: y'), 'field');
    assert.equal(kind('Empty:'), 'field');
    assert.equal(kind(' folded'), 'continuation');
    assert.equal(kind('\tfolded'), 'continuation');
    assert.equal(kind('WDVPIVAlQEFQ'), 'other');
    assert.equal(kind(': no name'), 'other');
    assert.equal(kind('two words: x'), 'other');
    assert.equal(kind('From sender@example.com Mon Jan 1'), 'other');
    // Postfix judges a line by its first 2048 bytes: a colon past the line length is no field
    assert.equal(kind(`${'A'.repeat(2100)}:`), 'other');
    assert.equal(kind(`${'A'.repeat(997)}: x`), 'field');
    assert.equal(kind(`X${' '.repeat(1000)}: x`), 'other');
    assert.equal(kind(`X-Long: ${'y'.repeat(5000)}`), 'field');
  });
});

describe('headerViewLine (what Haraka\'s own header view keeps when it keeps no copy)', () => {
  it('passes a line of RFC 5322 length as it is, and cuts a longer one to 998 characters and CRLF', () => {
    const short = b(`Subject: ${'a'.repeat(989)}\r\n`);
    assert.equal(short.length, 1000);
    assert.equal(headerViewLine(short), short, 'the same buffer');
    const long = b(`Subject: ${'a'.repeat(60_000)}\r\n`);
    const cut = headerViewLine(long);
    assert.equal(cut.length, 1000);
    assert.equal(cut.toString('latin1'), `Subject: ${'a'.repeat(989)}\r\n`);
    assert.equal(headerViewLine(b('\r\n')).toString(), '\r\n', 'the empty line that ends the header');
  });
});
