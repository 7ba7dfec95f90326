import assert from 'node:assert/strict';
import { beginExchange, saslLoginName } from '../../src/lib/sasl_login';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

describe('the SASL login name of an AUTH exchange (for XCLIENT LOGIN after a reopen)', () => {
  it("PLAIN: the authcid, with the initial response or after a 334", () => {
    assert.equal(saslLoginName(beginExchange(`AUTH PLAIN ${b64('\0alice\0secret')}`)), 'alice');
    const exchange = beginExchange('AUTH plain');
    assert.equal(exchange.mechanism, 'PLAIN');
    assert.equal(exchange.responses.length, 0);
    exchange.responses.push(b64('alice\0alice\0secret'));
    assert.equal(saslLoginName(exchange), 'alice', 'an authzid equal to the authcid is the same identity');
  });

  it('PLAIN acting as another identity (an authzid that differs), or malformed: no name', () => {
    assert.equal(saslLoginName(beginExchange(`AUTH PLAIN ${b64('bob\0alice\0secret')}`)), undefined);
    assert.equal(saslLoginName(beginExchange(`AUTH PLAIN ${b64('alice\0secret')}`)), undefined);
    assert.equal(saslLoginName(beginExchange('AUTH PLAIN =')), undefined);
    assert.equal(saslLoginName(beginExchange('AUTH PLAIN not*base64')), undefined);
    assert.equal(saslLoginName(beginExchange(`AUTH PLAIN ${b64('\0al\nice\0secret')}`)), undefined, 'a control character');
  });

  it('LOGIN: the user name, as initial response or as the first answer', () => {
    assert.equal(saslLoginName(beginExchange(`AUTH LOGIN ${b64('alice@example.org')}`)), 'alice@example.org');
    const exchange = beginExchange('AUTH LOGIN');
    exchange.responses.push(b64('alice'), b64('secret'));
    assert.equal(saslLoginName(exchange), 'alice');
  });

  it('CRAM-MD5: the user before the digest', () => {
    const exchange = beginExchange('AUTH CRAM-MD5');
    exchange.responses.push(b64('alice b913a602c7eda7a495b4e6e7334d3890'));
    assert.equal(saslLoginName(exchange), 'alice');
  });

  it('mechanisms that carry no name in clear (DIGEST-MD5, SCRAM, XOAUTH2), or no response: no name', () => {
    for (const mechanism of ['DIGEST-MD5', 'SCRAM-SHA-256', 'XOAUTH2', 'GSSAPI']) {
      const exchange = beginExchange(`AUTH ${mechanism}`);
      exchange.responses.push(b64('n,,n=alice,r=abc'));
      assert.equal(saslLoginName(exchange), undefined, mechanism);
    }
    assert.equal(saslLoginName(beginExchange('AUTH LOGIN')), undefined);
  });
});
