import assert from 'node:assert/strict';
import { validHostname } from '../../src/lib/valid_hostname';

describe("a client host name by Postfix's rule (valid_hostname)", () => {
  it('takes a name without a dot (localhost from /etc/hosts), with digits, inner hyphens and underscores', () => {
    for (const name of ['localhost', 'runsc', 'mx1.example.org', 'a-b.example', '_dmarc.example', '1a.example', 'x', '0x']) {
      assert.equal(validHostname(name), true, name);
    }
  });

  it('refuses empty labels, a dot first or last, hyphens at a label edge, other characters', () => {
    for (const name of ['', '.', 'a..b', '.a', 'a.', '-a', 'a-', 'a.-b', 'a-.b', 'a b', 'a/b', 'é.example', '[UNAVAILABLE]', 'a:b']) {
      assert.equal(validHostname(name), false, JSON.stringify(name));
    }
  });

  it('refuses an all-numeric name (an address is no name)', () => {
    for (const name of ['127.0.0.1', '123', '1.2']) assert.equal(validHostname(name), false, name);
  });

  it('takes labels up to 63 characters and names up to 255', () => {
    assert.equal(validHostname('a'.repeat(63)), true);
    assert.equal(validHostname('a'.repeat(64)), false);
    const label = 'a'.repeat(63);
    const name255 = [label, label, label, 'a'.repeat(63)].join('.');
    assert.equal(name255.length, 255);
    assert.equal(validHostname(name255), true);
    assert.equal(validHostname(`${name255.slice(0, 253)}.b.c`), false, 'over 255');
  });
});
