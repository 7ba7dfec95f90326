import assert from 'node:assert/strict';
import { addressKeys, normalizeAddressOrDomain } from '../../src/lib/address_keys';
import { formatDiagnostic } from '../../src/lib/diagnostics';
import { MAX_PARENT_DEPTH, parseUserConfig } from '../../src/lib/user_config';
import { MISSING, NO_KEYS, nullSenderKeys, UserSectionIndex } from '../../src/lib/user_section_index';

function index(text: string): UserSectionIndex {
  const { userConfig, diagnostics } = parseUserConfig(text, 'users.cfg');
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  return new UserSectionIndex(userConfig.sections);
}

function keys(address: string | undefined): string[] | undefined {
  if (address === undefined) return MISSING;
  const at = address.lastIndexOf('@');
  return addressKeys(address.slice(0, at), address.slice(at + 1));
}

function matched(ix: UserSectionIndex, rcpt: string | undefined, sender: string | undefined): string | undefined {
  return ix.match(keys(rcpt), keys(sender))?.name;
}

describe('user-specific configuration: parsing', () => {
  it('reads [rcpt|sender] headers with either part optional', () => {
    const { userConfig } = parseUserConfig('[a@b.com]\n[|a@b.com]\n[b.com]\n[org|b.com]\n[com]\n', 'u.cfg');
    assert.deepEqual(userConfig.sections.map((s) => [s.rcpt, s.sender]), [
      ['a@b.com', ''], ['', 'a@b.com'], ['b.com', ''], ['org', 'b.com'], ['com', ''],
    ]);
  });

  it('keeps the options each section sets, checked like [smtp]', () => {
    const { userConfig, diagnostics } = parseUserConfig('[b.com]\naction_av_infected = defer\nav_scan_obj_archives = no\n', 'u.cfg');
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(userConfig.sections[0].settings, { action_av_infected: 'defer', av_scan_obj_archives: false });
  });

  it('refuses null_sender_matches_sender_sections in a section: it decides how sections are chosen', () => {
    const { userConfig, diagnostics } = parseUserConfig('[b.com]\nnull_sender_matches_sender_sections = no\n', 'u.cfg');
    assert.deepEqual(diagnostics.map(formatDiagnostic), [
      "u.cfg:2: warning: option 'null_sender_matches_sender_sections' is not valid in [b.com] "
        + '(it belongs in [smtp] or [global] of esets.cfg) and is ignored',
    ]);
    assert.deepEqual(userConfig.sections[0].settings, {});
  });

  it('refuses address_routing in a section: it decides how sections are chosen', () => {
    const { userConfig, diagnostics } = parseUserConfig('[b.com]\naddress_routing = delivered\n', 'u.cfg');
    assert.deepEqual(diagnostics.map(formatDiagnostic), [
      "u.cfg:2: warning: option 'address_routing' is not valid in [b.com] (it belongs in [smtp] or [global] of esets.cfg) and is ignored",
    ]);
    assert.deepEqual(userConfig.sections[0].settings, {});
  });

  it('refuses a wrong value with file and line, and warns about agent-only options', () => {
    const { diagnostics } = parseUserConfig('[b.com]\naction_av = maybe\nlisten_port = 25\n', 'u.cfg');
    assert.equal(
      formatDiagnostic(diagnostics[0]),
      "u.cfg:2: error: option 'action_av' has invalid value 'maybe': expected one of accept, scan, defer, discard, reject",
    );
    assert.match(formatDiagnostic(diagnostics[1]), /^u\.cfg:3: warning: option 'listen_port' is not valid in \[b\.com\]/);
  });

  it('inherits a parent section (chains too); own settings win', () => {
    const { userConfig, diagnostics } = parseUserConfig([
      '[group_base]', 'action_av_infected = discard', 'action_as = scan',
      '[group_strict]', 'parent_id = "group_base"', 'action_as_spam = reject',
      '[b.com]', 'parent_id = "group_strict"', 'action_av_infected = defer',
    ].join('\n'), 'u.cfg');
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(userConfig.sections[2].settings, { action_av_infected: 'defer', action_as: 'scan', action_as_spam: 'reject' });
  });

  it('reports a missing parent and a cycle with file:line', () => {
    const missing = parseUserConfig('[b.com]\nparent_id = "nowhere"\n', 'u.cfg').diagnostics;
    assert.equal(formatDiagnostic(missing[0]), 'u.cfg:2: error: [b.com] parent_id "nowhere" names no section of this file');
    const cycle = parseUserConfig('[a]\nparent_id = "b"\n[b]\nparent_id = "a"\n', 'u.cfg').diagnostics;
    assert.equal(cycle[0].severity, 'error');
    assert.match(formatDiagnostic(cycle[0]), /^u\.cfg:\d: error: parent_id cycle: \[a\] -> \[b\] -> \[a\]|^u\.cfg:\d: error: parent_id cycle/);
    const self = parseUserConfig('[a]\nparent_id = "a"\n', 'u.cfg').diagnostics;
    assert.match(formatDiagnostic(self[0]), /^u\.cfg:2: error: parent_id cycle: \[a\] -> \[a\]/);
  });
});

/** Sections [g0] .. [g<n-1>], each inheriting the next; the last sets action_av = reject. */
function chain(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(`[g${i}]`, i < n - 1 ? `parent_id = "g${i + 1}"` : 'action_av = reject');
  return `${lines.join('\n')}\n`;
}

describe('user-specific configuration: parent_id chains of any length', () => {
  it('reports a chain of 7,000 sections as one error naming file, line and the bound, without throwing, in well under a second', () => {
    const started = Date.now();
    const { userConfig, diagnostics } = parseUserConfig(chain(7000), 'u.cfg');
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    assert.deepEqual(diagnostics.map(formatDiagnostic), [
      // [g6898] is 101 steps above [g6999]; its parent_id is on line 2 * 6898 + 2
      `u.cfg:13798: error: [g6898] parent_id "g6899" is step ${MAX_PARENT_DEPTH + 1} of a parent_id chain: `
        + `at most ${MAX_PARENT_DEPTH} are allowed`,
    ]);
    assert.equal(userConfig.sections.length, 7000);
  });

  it(`resolves a chain of ${MAX_PARENT_DEPTH} steps: the deepest section inherits from the root`, () => {
    const { userConfig, diagnostics } = parseUserConfig(chain(MAX_PARENT_DEPTH + 1), 'u.cfg');
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(userConfig.sections[0].settings, { action_av: 'reject' });
  });

  it('finds the same depths whatever the file order (a chain written root first)', () => {
    const lines: string[] = ['[g0]', 'action_av = reject'];
    for (let i = 1; i <= MAX_PARENT_DEPTH + 1; i++) lines.push(`[g${i}]`, `parent_id = "g${i - 1}"`);
    const { userConfig, diagnostics } = parseUserConfig(lines.join('\n'), 'u.cfg');
    assert.deepEqual(diagnostics.map(formatDiagnostic), [
      `u.cfg:${2 * (MAX_PARENT_DEPTH + 1) + 2}: error: [g${MAX_PARENT_DEPTH + 1}] parent_id "g${MAX_PARENT_DEPTH}" `
        + `is step ${MAX_PARENT_DEPTH + 1} of a parent_id chain: at most ${MAX_PARENT_DEPTH} are allowed`,
    ]);
    assert.deepEqual(userConfig.sections[MAX_PARENT_DEPTH].settings, { action_av: 'reject' });
  });

  it('reports a cycle of 7,000 sections once, with the chain shortened', () => {
    const lines: string[] = [];
    for (let i = 0; i < 7000; i++) lines.push(`[g${i}]`, `parent_id = "g${(i + 1) % 7000}"`);
    const { diagnostics } = parseUserConfig(lines.join('\n'), 'u.cfg');
    assert.deepEqual(diagnostics.map(formatDiagnostic), [
      'u.cfg:14000: error: parent_id cycle: [g0] -> [g1] -> [g2] -> [g3] -> ... (6994 more) -> [g6998] -> [g6999] -> [g0]',
    ]);
  });

  it('reports a section under a cycle only through the cycle', () => {
    const { diagnostics } = parseUserConfig('[x.example]\nparent_id = "a"\n[a]\nparent_id = "b"\n[b]\nparent_id = "a"\n', 'u.cfg');
    assert.deepEqual(diagnostics.map(formatDiagnostic), ['u.cfg:6: error: parent_id cycle: [a] -> [b] -> [a]']);
  });
});

describe('user-specific configuration: sender sections that accept', () => {
  const FORGED = 'sender addresses are not authenticated: a forged MAIL FROM chooses this section';

  it('warns, at the section, for each sender section whose settings accept mail unscanned or despite the verdict', () => {
    const { diagnostics } = parseUserConfig([
      '[group_lenient]', 'action_av_infected = accept', // 1
      '[|trusted@partner.example]', 'parent_id = "group_lenient"', // 3
      '[example.org|partner.example]', 'action_av = accept', 'action_av_notscanned = accept', // 5
      '[|other.example]', 'action_av_deleted = accept', 'action_av_infected = defer', // 8
      '[lenient.example]', 'action_av_infected = accept', // 11: recipient part only
      '[|strict.example]', 'action_av_infected = reject', 'action_as = accept', // 13: AS accept is not the AV stage
      '[|override.example]', 'parent_id = "group_lenient"', 'action_av_infected = defer', // 16: own setting wins
    ].join('\n'), 'u.cfg');
    assert.deepEqual(diagnostics.map(formatDiagnostic), [
      `u.cfg:3: warning: [|trusted@partner.example] sets action_av_infected = accept (from [group_lenient], line 2): ${FORGED}`,
      `u.cfg:5: warning: [example.org|partner.example] sets action_av = accept, action_av_notscanned = accept: ${FORGED}`,
      `u.cfg:8: warning: [|other.example] sets action_av_deleted = accept: ${FORGED}`,
    ]);
    assert.ok(diagnostics.every((d) => d.severity === 'warning'), 'a warning: the file still loads');
  });

  it('names the section that sets the option several steps up the chain', () => {
    const { diagnostics } = parseUserConfig(
      '[base]\naction_av = accept\n[mid]\nparent_id = "base"\n[|x@y.example]\nparent_id = "mid"\n', 'u.cfg',
    );
    assert.deepEqual(diagnostics.map(formatDiagnostic), [
      `u.cfg:5: warning: [|x@y.example] sets action_av = accept (from [base], line 2): ${FORGED}`,
    ]);
  });
});

describe('user-specific configuration: the matching algorithm', () => {
  it('compares an address as n@d.e.f, d.e.f, e.f, f', () => {
    assert.deepEqual(addressKeys('Rcptname', 'RcptDomain.com'), ['rcptname@rcptdomain.com', 'rcptdomain.com', 'com']);
    assert.deepEqual(addressKeys('n', 'd.e.f'), ['n@d.e.f', 'd.e.f', 'e.f', 'f']);
  });

  it("follows the manual's examples", () => {
    const ix = index('[|username@domain.com]\n[username@domain.com]\n[domain.com]\n[org|domain.com]\n');
    assert.equal(matched(ix, 'other@elsewhere.net', 'username@domain.com'), '|username@domain.com');
    assert.equal(matched(ix, 'username@domain.com', 'x@y.net'), 'username@domain.com');
    assert.equal(matched(ix, 'someone@domain.com', 'x@y.net'), 'domain.com');
    assert.equal(matched(ix, 'someone@example.org', 'a@domain.com'), 'org|domain.com');
    assert.equal(matched(ix, 'someone@example.org', 'a@other.com'), undefined, 'no section: the agent section');
  });

  it('takes the first matching section in file order, not the most specific', () => {
    const ix = index('[com]\n[user@b.com]\n');
    assert.equal(matched(ix, 'user@b.com', 's@x.org'), 'com');
  });

  it('needs both parts to match', () => {
    const ix = index('[b.com|a.org]\n[b.com]\n');
    assert.equal(matched(ix, 'x@b.com', 'y@a.org'), 'b.com|a.org');
    assert.equal(matched(ix, 'x@b.com', 'y@c.org'), 'b.com');
  });

  it('lets a missing address (null sender, no recipient) match any part', () => {
    const ix = index('[b.com|a.org]\n[c.com]\n');
    assert.equal(matched(ix, 'x@b.com', undefined), 'b.com|a.org', 'null sender <>');
    assert.equal(matched(ix, undefined, 'y@a.org'), 'b.com|a.org');
    assert.equal(matched(ix, undefined, undefined), 'b.com|a.org');
    assert.equal(matched(ix, 'x@c.com', undefined), 'c.com');
  });

  it('is case-insensitive on both sides', () => {
    const ix = index('[User@B.COM]\n');
    assert.equal(matched(ix, 'uSeR@b.Com', 's@x.org'), 'User@B.COM');
  });

  it('does not match a domain by substring: b.com is not ab.com', () => {
    const ix = index('[b.com]\n');
    assert.equal(matched(ix, 'x@ab.com', 's@x.org'), undefined);
    assert.equal(matched(ix, 'x@mail.b.com', 's@x.org'), 'b.com');
  });

  it('handles address forms of the wild: quoted local parts, IDN domains, trailing dots', () => {
    const ix = index('["john doe"@example.com]\n[bücher.de]\n[example.net.]\n');
    assert.equal(matched(ix, '"john doe"@example.com', undefined), '"john doe"@example.com');
    assert.equal(matched(ix, '"John Doe"@EXAMPLE.com', 's@x.org'), '"john doe"@example.com');
    assert.equal(matched(ix, 'x@xn--bcher-kva.de', 's@x.org'), 'bücher.de', 'punycode address, UTF-8 section');
    assert.equal(matched(ix, 'x@shop.bücher.de', 's@x.org'), 'bücher.de', 'UTF-8 address');
    assert.equal(matched(ix, 'x@example.net.', 's@x.org'), 'example.net.');
    assert.equal(normalizeAddressOrDomain('"a\\"b"@X.ORG.'), 'a"b@x.org');
  });

  it('gives the same answer as a linear scan over 10,000 sections', () => {
    const lines: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const kind = i % 4;
      lines.push(kind === 0 ? `[user${i}@d${i % 97}.com]`
        : kind === 1 ? `[|s${i}@d${i % 89}.org]`
        : kind === 2 ? `[d${i % 83}.net|org]`
        : `[d${i % 79}.com]`);
    }
    const { userConfig } = parseUserConfig(lines.join('\n'), 'u.cfg');
    const ix = new UserSectionIndex(userConfig.sections);
    const linear = (r: string[] | undefined, s: string[] | undefined): string | undefined => userConfig.sections.find((sec) =>
      (sec.rcpt === '' || r === undefined || r.includes(sec.rcpt))
      && (sec.sender === '' || s === undefined || s.includes(sec.sender)))?.name;
    for (let i = 0; i < 500; i++) {
      const r = keys(`user${i * 7}@d${i % 97}.com`);
      const s = keys(i % 3 ? `s${i * 5}@d${i % 89}.org` : `x@mail.d${i % 83}.org`);
      assert.equal(ix.match(r, s)?.name, linear(r, s));
      assert.equal(ix.match(keys(`a@d${i % 83}.net`), s)?.name, linear(keys(`a@d${i % 83}.net`), s));
    }
  });
});

describe('user-specific configuration: the null sender <> (null_sender_matches_sender_sections)', () => {
  const SECTIONS = [
    '[|trusted@partner.example]', 'action_av_infected = accept', // 1: sender part only
    '[rcpt@x.example|sender@y.example]', 'action_av_infected = discard', // 3: both parts
    '[x.example]', 'action_av_infected = defer', // 5: recipient part only
  ].join('\n');
  const bounce = (ix: UserSectionIndex, rcpt: string, matchesSenderSections: boolean): string | undefined =>
    ix.match(keys(rcpt), nullSenderKeys(matchesSenderSections))?.name;

  it("yes (default, the manual's letter): <> matches the first section whatever its sender part names", () => {
    const ix = index(SECTIONS);
    assert.equal(bounce(ix, 'rcpt@x.example', true), '|trusted@partner.example', 'a sender-only section governs the bounce');
    assert.equal(bounce(ix, 'other@z.example', true), '|trusted@partner.example');
    assert.equal(nullSenderKeys(true), MISSING);
    const both = index(SECTIONS.split('\n').slice(2).join('\n'));
    assert.equal(bounce(both, 'rcpt@x.example', true), 'rcpt@x.example|sender@y.example', 'its sender part matches <>');
    assert.equal(bounce(both, 'other@x.example', true), 'x.example', 'its recipient part still has to match');
  });

  it('no: <> matches only sections without a sender part (recipient sections, else the agent section)', () => {
    const ix = index(SECTIONS);
    assert.equal(bounce(ix, 'rcpt@x.example', false), 'x.example', 'neither [|trusted@...] nor [rcpt@x|sender@y]');
    assert.equal(bounce(ix, 'other@z.example', false), undefined, 'the agent section');
    assert.equal(nullSenderKeys(false), NO_KEYS);
    const senderOnly = index('[|trusted@partner.example]\n[|partner.example]\n[|example]\n');
    assert.equal(bounce(senderOnly, 'rcpt@x.example', false), undefined);
    const catchAll = index('[|trusted@partner.example]\n[rcpt@x.example|]\n');
    assert.equal(bounce(catchAll, 'rcpt@x.example', false), 'rcpt@x.example|', 'an empty sender part after the bar is no sender part');
  });

  it('changes nothing for a sender with an address, under either setting', () => {
    const ix = index(SECTIONS);
    assert.equal(matched(ix, 'rcpt@x.example', 'trusted@partner.example'), '|trusted@partner.example');
    assert.equal(matched(ix, 'rcpt@x.example', 'sender@y.example'), 'rcpt@x.example|sender@y.example');
    assert.equal(matched(ix, 'rcpt@x.example', 'a@b.example'), 'x.example');
  });

  it('gives the same answer as a linear scan over 10,000 sections, both settings', () => {
    const lines: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const kind = i % 4;
      // sender-only sections in the second half: under yes the first one matches every bounce
      const senderOnly = i < 5000 ? `[u${i}@d${i % 97}.com|s${i}@d${i % 89}.org]` : `[|s${i}@d${i % 89}.org]`;
      lines.push(kind === 0 ? senderOnly
        : kind === 1 ? `[d${i % 83}.net|org]`
        : kind === 2 ? `[u${i}@d${i % 97}.com]`
        : `[d${i % 79}.com]`);
    }
    const { userConfig } = parseUserConfig(lines.join('\n'), 'u.cfg');
    const ix = new UserSectionIndex(userConfig.sections);
    const linear = (r: readonly string[], matchesSenderSections: boolean): string | undefined => userConfig.sections.find((sec) =>
      (sec.rcpt === '' || r.includes(sec.rcpt)) && (sec.sender === '' || matchesSenderSections))?.name;
    for (let i = 0; i < 500; i++) {
      for (const rcpt of [
        `u${i * 4}@d${(i * 4) % 97}.com`, `u${i * 4 + 2}@d${(i * 4 + 2) % 97}.com`,
        `a@d${i % 83}.net`, `a@d${i % 79}.com`, 'a@nowhere.example',
      ]) {
        for (const setting of [true, false]) {
          const name = ix.match(keys(rcpt), nullSenderKeys(setting))?.name;
          assert.equal(name, linear(keys(rcpt)!, setting), `${rcpt} ${setting}`);
          if (!setting) assert.ok(!name?.includes('|s'), `${rcpt}: <> chose [${name}]`);
        }
      }
    }
    assert.equal(ix.match(keys('u0@d0.com'), nullSenderKeys(true))?.name, 'u0@d0.com|s0@d0.org');
    assert.equal(ix.match(keys('a@nowhere.example'), nullSenderKeys(true))?.name, '|s5000@d16.org');
  });
});
