import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { HARAKA_REPLIES, NESTED_MAIL, postfixReplyFor, trimmedAddressArgs, verbOf } from '../../src/lib/haraka_replies';

describe("Haraka's own replies in Postfix's words", () => {
  it('maps each of Haraka\'s replies to Postfix smtpd 3.7\'s (code, enhanced code, text)', () => {
    const cases: [number, string, string, string][] = [
      [503, 'RCPT required first', 'DATA', '554 5.5.1 Error: no valid recipients'],
      [554, 'No valid recipients', 'DATA', '554 5.5.1 Error: no valid recipients'],
      [503, 'MAIL required first', 'DATA', '503 5.5.1 Error: need RCPT command'],
      [503, 'Use MAIL before RCPT', 'RCPT TO:<a@b>', '503 5.5.1 Error: need MAIL command'],
      [503, 'Use EHLO/HELO before MAIL', 'MAIL FROM:<a@b>', '503 5.5.1 Error: send HELO/EHLO first'],
      [500, 'Unrecognized command', 'FOO bar', '500 5.5.2 Error: command not recognized'],
      [500, 'Unrecognized command', '', '500 5.5.2 Error: bad syntax'],
      [354, 'go ahead, make my day', 'DATA', '354 End data with <CR><LF>.<CR><LF>'],
      [250, 'OK', 'RSET', '250 2.0.0 Ok'],
      [250, 'OK', 'NOOP', '250 2.0.0 Ok'],
      [501, 'HELO requires domain/address - see RFC-2821 4.1.1.1', 'HELO', '501 Syntax: HELO hostname'],
      [501, 'EHLO requires domain/address - see RFC-2821 4.1.1.1', 'EHLO', '501 Syntax: EHLO hostname'],
      [501, 'Syntax error', 'DATA x', '501 5.5.4 Syntax: DATA'],
      [501, 'Syntax error', 'rset x', '501 5.5.4 Syntax: RSET'],
    ];
    for (const [code, text, line, expected] of cases) {
      const r = postfixReplyFor(code, text, line);
      assert.ok(r, `${code} ${text}`);
      assert.equal(`${r.code} ${r.lines.join('\n')}`, expected, `${code} ${text} (${line})`);
      // a reply given as one line in an array is the same reply
      assert.deepEqual(postfixReplyFor(code, [text], line), r);
    }
  });

  it('leaves every other reply alone: other texts, other codes, other verbs, several lines, objects', () => {
    assert.equal(postfixReplyFor(250, 'OK ', 'RSET'), undefined);
    assert.equal(postfixReplyFor(250, 'ok', 'RSET'), undefined);
    assert.equal(postfixReplyFor(550, 'OK', 'RSET'), undefined);
    assert.equal(postfixReplyFor(250, '2.0.0 Ok', 'RSET'), undefined);
    assert.equal(postfixReplyFor(501, 'Syntax error', 'QUIT x'), undefined);
    assert.equal(postfixReplyFor(501, 'Syntax error', 'HELO'), undefined);
    assert.equal(postfixReplyFor(250, ['OK', 'more'], 'RSET'), undefined);
    assert.equal(postfixReplyFor(250, { code: 250, reply: ['OK'] }, 'RSET'), undefined);
  });

  it('every entry is a text Haraka 3 sends itself (connection.js); Postfix\'s answers carry an enhanced code but 354 and HELO/EHLO', () => {
    const source = fs.readFileSync(path.join(require.resolve('Haraka/package.json'), '..', 'connection.js'), 'utf8');
    for (const r of HARAKA_REPLIES) {
      assert.ok(source.includes(`${r.code}, '${r.text}'`) || source.includes(`msg || '${r.text}'`), `${r.code} ${r.text} is not Haraka's`);
      if (r.postfix.code !== 354 && !/^Syntax: (HE|EH)LO/.test(r.postfix.lines[0])) assert.match(r.postfix.lines[0], /^[245]\.\d{1,3}\.\d{1,3} /);
    }
    assert.equal(`${NESTED_MAIL.code} ${NESTED_MAIL.lines[0]}`, '503 5.5.1 Error: nested MAIL command');
  });

  it('answers a copy: the table itself is never handed out', () => {
    const r = postfixReplyFor(250, 'OK', 'RSET')!;
    r.lines.push('x');
    assert.deepEqual(postfixReplyFor(250, 'OK', 'RSET')!.lines, ['2.0.0 Ok']);
  });

  it('verbOf: the first word, upper case', () => {
    assert.equal(verbOf('rset x'), 'RSET');
    assert.equal(verbOf(''), '');
    assert.equal(verbOf('DATA'), 'DATA');
  });

  it('trimmedAddressArgs: white space inside the brackets dropped, as Postfix reads the address', () => {
    assert.equal(trimmedAddressArgs('TO:<r@x >'), 'TO:<r@x>');
    assert.equal(trimmedAddressArgs('FROM:< a@b > SIZE=10'), 'FROM:<a@b> SIZE=10');
    assert.equal(trimmedAddressArgs('from: <\ta@b\t> BODY=8BITMIME'), 'from: <a@b> BODY=8BITMIME');
    assert.equal(trimmedAddressArgs('FROM:< >'), 'FROM:<>');
    assert.equal(trimmedAddressArgs('TO:<"a b"@x>'), 'TO:<"a b"@x>');
    // quoted parts are the address's own, spaces and `>` included: never changed
    assert.equal(trimmedAddressArgs('TO:<"us er >"@example.org>'), 'TO:<"us er >"@example.org>');
    assert.equal(trimmedAddressArgs('TO:<"us>er"@example.org >'), 'TO:<"us>er"@example.org >');
    assert.equal(trimmedAddressArgs('TO:<a@x> ORCPT=rfc822;< b@y >'), 'TO:<a@x> ORCPT=rfc822;< b@y >');
    assert.equal(trimmedAddressArgs('TO:r@x'), 'TO:r@x');
  });
});
