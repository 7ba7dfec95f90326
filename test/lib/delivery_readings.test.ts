import assert from 'node:assert/strict';
import { deliveryReadings, dequoted, MAX_READINGS } from '../../src/lib/delivery_readings';

const shown = (local: string, domain: string): string[] => deliveryReadings(local, domain).map((r) => `${r.local}@${r.domain}`);

describe('the addresses a server may deliver an address to (percent hack, bang paths, quoted local parts)', () => {
  it('an address with no routing in its local part is read one way: as written', () => {
    assert.deepEqual(shown('user', 'example.org'), ['user@example.org']);
    assert.deepEqual(shown('first.last+tag', 'example.org'), ['first.last+tag@example.org']);
  });

  it('user%domain@here is also user@domain (Postfix allow_percent_hack), the rightmost % first', () => {
    assert.deepEqual(shown('victim%example.org', 'lenient.example'), ['victim%example.org@lenient.example', 'victim@example.org']);
    assert.deepEqual(shown('a%b.example%c.example', 'here.example'), [
      'a%b.example%c.example@here.example', 'a%b.example@c.example', 'a@b.example',
    ]);
  });

  it('site!user@here is also user@site (Postfix swap_bangpath), then on along the path', () => {
    assert.deepEqual(shown('example.org!victim', 'lenient.example'), ['example.org!victim@lenient.example', 'victim@example.org']);
    assert.deepEqual(shown('a.example!b.example!user', 'here.example'), [
      'a.example!b.example!user@here.example', 'b.example!user@a.example', 'user@b.example',
    ]);
  });

  it('a quoted local part is looked inside (Postfix resolve_dequoted_address): "user@domain"@here is also user@domain', () => {
    assert.equal(dequoted('"victim@example.org"'), 'victim@example.org');
    assert.equal(dequoted('"a\\"b"'), 'a"b');
    assert.deepEqual(shown('"victim@example.org"', 'lenient.example'), ['victim@example.org@lenient.example', 'victim@example.org']);
    assert.deepEqual(shown('"v%example.org"', 'lenient.example'), ['v%example.org@lenient.example', 'v@example.org']);
  });

  it('mixed forms give every reading a server could reach, each once; an empty domain is no reading', () => {
    const all = shown('x!a%b.example', 'here.example');
    assert.deepEqual(all, ['x!a%b.example@here.example', 'x!a@b.example', 'a%b.example@x', 'a@x', 'a@b.example']);
    assert.deepEqual(shown('user%', 'here.example'), ['user%@here.example']);
  });

  it('is bounded, however much routing an address holds', () => {
    const local = Array.from({ length: 40 }, (_, i) => `h${i}`).join('!') + '%' + Array.from({ length: 40 }, (_, i) => `d${i}`).join('%');
    assert.equal(deliveryReadings(local, 'here.example').length, MAX_READINGS);
  });
});
