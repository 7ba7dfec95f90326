import assert from 'node:assert/strict';
import { addressRoutes, chooseSection, fixedRoutes, Keys } from '../../src/lib/address_routing';
import { parseUserConfig } from '../../src/lib/user_config';
import { UserSectionIndex } from '../../src/lib/user_section_index';

function sections(text: string): (r: Keys, s: Keys) => string | undefined {
  const { userConfig } = parseUserConfig(text, 'u.cfg');
  const index = new UserSectionIndex(userConfig!.sections);
  return (r, s) => index.match(r, s)?.name;
}

const route = (address: string): ReturnType<typeof addressRoutes> => {
  const at = address.lastIndexOf('@');
  return addressRoutes(address.slice(0, at), address.slice(at + 1));
};

describe('address_routing: the section of a recipient and sender with routing in their local parts', () => {
  const users = sections(
    '[lenient.example]\naction_av = accept\n[example.org]\naction_av = reject\n[|partner.example]\naction_av = accept\n',
  );
  const chosen = (rcpt: string, sender: string, mode: 'refuse' | 'delivered'): string => {
    const c = chooseSection(route(rcpt), route(sender), mode, users);
    return 'refused' in c ? `refused ${c.refused}` : `${users(c.rcpt, c.sender) ?? 'agent'}${c.resolved ? ' (resolved)' : ''}`;
  };

  it('readings under one section: that section, whatever the mode', () => {
    for (const mode of ['refuse', 'delivered'] as const) {
      assert.equal(chosen('a%b.lenient.example@lenient.example', 's@example.net', mode), 'lenient.example');
      assert.equal(chosen('victim@example.org', 's@example.net', mode), 'example.org');
      assert.equal(chosen('x%y.example@z.example', 's@example.net', mode), 'agent');
    }
  });

  it('refuse: the recipient whose readings differ is refused, then the sender', () => {
    assert.equal(chosen('victim%example.org@lenient.example', 's@example.net', 'refuse'), 'refused recipient');
    assert.equal(chosen('victim@example.net', 'x%attacker.example@partner.example', 'refuse'), 'refused sender');
    assert.equal(chosen('victim%example.org@lenient.example', 'x%attacker.example@partner.example', 'refuse'), 'refused recipient');
  });

  it('delivered: the section of the resolved addresses, never the written one for being written', () => {
    // written under the lax [lenient.example], delivered to example.org: example.org's section
    assert.equal(chosen('victim%example.org@lenient.example', 's@example.net', 'delivered'), 'example.org (resolved)');
    assert.equal(chosen('example.org!victim@lenient.example', 's@example.net', 'delivered'), 'example.org (resolved)');
    // written under the strict [example.org], delivered to lenient.example: the lax one, as if sent there directly
    assert.equal(chosen('victim%lenient.example@example.org', 's@example.net', 'delivered'), 'lenient.example (resolved)');
    // the sender: x%attacker.example@partner.example resolves outside [|partner.example]
    assert.equal(chosen('victim@example.net', 'x%attacker.example@partner.example', 'delivered'), 'agent (resolved)');
  });

  it('an address with more readings than the relay reads is refused under both modes', () => {
    const deep = `victim%example.org${'%lenient.example'.repeat(20)}@lenient.example`;
    for (const mode of ['refuse', 'delivered'] as const) {
      assert.equal(chosen(deep, 's@example.net', mode), 'refused recipient');
      assert.equal(chosen('v@example.net', deep, mode), 'refused sender');
    }
  });

  it('a fixed address (the null sender) has one reading', () => {
    const c = chooseSection(route('victim@example.org'), fixedRoutes(undefined), 'refuse', users);
    assert.ok(!('refused' in c) && users(c.rcpt, c.sender) === 'example.org');
  });
});
