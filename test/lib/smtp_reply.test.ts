import assert from 'node:assert/strict';
import { parseEhloCapabilities, replyText, SmtpReplyReader, xtext } from '../../src/lib/smtp_reply';

describe('SMTP replies', () => {
  it('joins multi-line replies and splits replies across chunks', () => {
    const r = new SmtpReplyReader();
    assert.deepEqual(r.push('220 hi\r\n250-mx.example Hello\r\n250-PIPE'), [{ code: 220, lines: ['hi'] }]);
    const done = r.push('LINING\r\n250 SIZE 1000\r\n');
    assert.deepEqual(done, [{ code: 250, lines: ['mx.example Hello', 'PIPELINING', 'SIZE 1000'] }]);
    assert.deepEqual([...parseEhloCapabilities(done[0]).entries()], [['PIPELINING', ''], ['SIZE', '1000']]);
  });

  it('accepts bare LF and a code with no text', () => {
    assert.deepEqual(new SmtpReplyReader().push('250\n'), [{ code: 250, lines: [''] }]);
  });

  it('throws on a line that is not a reply', () => {
    assert.throws(() => new SmtpReplyReader().push('HELLO\r\n'), /not an SMTP reply/);
  });

  it('gives the text of a reply on one line', () => {
    assert.equal(replyText({ code: 550, lines: ['5.1.1 no such', 'user'] }), '5.1.1 no such user');
  });

  it('xtext-encodes +, = and characters outside printable ASCII', () => {
    assert.equal(xtext('a+b=c d'), 'a+2Bb+3Dc+20d');
    assert.equal(xtext('[127.0.0.1]'), '[127.0.0.1]');
  });

  it('xtext-encodes the UTF-8 bytes of characters beyond ASCII (never a code unit the reader takes as a byte and letters)', () => {
    assert.equal(xtext('jos\u00e9'), 'jos+C3+A9');
    assert.equal(xtext('\u61d0min'), '+E6+87+90min');
    // decoding it as RFC 3461 says gives the value back
    const decoded = (x: string): string => Buffer.from(x.replace(/\+([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1')
      .toString('utf8');
    for (const v of ['jos\u00e9', '\u61d0min', 'a+b=c d', '\u{1f600}x']) assert.equal(decoded(xtext(v)), v);
  });
});
