import assert from 'node:assert/strict';
import { deliveryReadings, dequoted, exceedsReadings, MAX_READINGS, resolvedReading } from '../../src/lib/delivery_readings';

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

describe("the address Postfix's resolver ends at when every domain on the way is its own (address_routing = delivered)", () => {
  const resolved = (local: string, domain: string): string => {
    const r = resolvedReading(local, domain);
    return `${r.local}@${r.domain}`;
  };

  it('resolves each routing form to the innermost address, and is always one of the readings', () => {
    const cases: [string, string][] = [
      ['victim%example.org', 'lenient.example'], ['example.org!victim', 'lenient.example'], ['"victim@example.org"', 'lenient.example'],
      ['"victim%example.org"', 'lenient.example'], ['a.example!victim%example.org', 'lenient.example'],
      ['victim%example.org%lenient.example', 'lenient.example'], ['a.example!b.example!victim', 'lenient.example'],
      ['VICTIM%EXAMPLE.ORG', 'lenient.example'], ['user', 'example.org'],
    ];
    for (const [local, domain] of cases) {
      const r = resolvedReading(local, domain);
      const all = deliveryReadings(local, domain).map((x) => `${x.local.toLowerCase()}@${x.domain.toLowerCase()}`);
      assert.ok(all.includes(`${r.local.toLowerCase()}@${r.domain.toLowerCase()}`), `${local}@${domain} -> ${r.local}@${r.domain}`);
    }
    assert.equal(resolved('victim%example.org', 'lenient.example'), 'victim@example.org');
    assert.equal(resolved('"victim@example.org"', 'lenient.example'), 'victim@example.org');
    // a quoted-pair: the quote it keeps is part of the local part Postfix delivers to
    assert.equal(resolved('"a\\"b%example.org"', 'lenient.example'), 'a"b@example.org');
    assert.equal(resolved('"plain"', 'example.org'), 'plain@example.org');
    assert.equal(resolved('user', 'example.org'), 'user@example.org');
  });

  it('swaps a bang path before the percent hack, quoted or not (as Postfix 3.7 does)', () => {
    // a.example!victim%example.org: victim%example.org@a.example, then victim@example.org
    assert.equal(resolved('a.example!victim%example.org', 'lenient.example'), 'victim@example.org');
    // the bang path is swapped at its first !, then on along the path
    assert.equal(resolved('a.example!b.example!victim', 'lenient.example'), 'victim@b.example');
    // quoted: "a.example!victim%example.org" is looked inside, then read as unquoted
    assert.equal(resolved('"a.example!victim%example.org"', 'lenient.example'), 'victim@example.org');
  });

  it('stops before a step that would leave no domain (%@here, !user@here)', () => {
    assert.equal(resolved('%', 'lenient.example'), '%@lenient.example');
    assert.equal(resolved('!victim', 'lenient.example'), '!victim@lenient.example');
  });

  it('an address with more readings than the relay reads is marked so (the relay refuses it)', () => {
    // Postfix resolves this (each lenient.example is its own) to victim@example.org, 20 steps away
    const local = `victim%example.org${'%lenient.example'.repeat(20)}`;
    assert.equal(exceedsReadings(local, 'lenient.example'), true);
    assert.equal(exceedsReadings('victim%example.org', 'lenient.example'), false);
    assert.ok(!deliveryReadings(local, 'lenient.example').some((r) => r.domain === 'example.org'));
  });
});
