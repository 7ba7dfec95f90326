import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { formatDiagnostic } from '../../src/lib/diagnostics';
import { buildConfig } from '../../src/lib/esets_config';
import { DEFAULT_CONFIG, OPTION_SPECS, parseIntWithUnit, parseOptionValue } from '../../src/lib/esets_options';

describe('esets.cfg options', () => {
  it('has a spec for every default and a default for every spec', () => {
    assert.deepEqual(Object.keys(OPTION_SPECS).sort(), Object.keys(DEFAULT_CONFIG).sort());
  });

  it("uses the manual's defaults for the agent options", () => {
    const c = buildConfig('', 'e.cfg').config;
    assert.equal(c.agent_enabled, false);
    assert.equal(c.num_proc, 1);
    assert.equal(c.num_thrd, 2);
    assert.equal(c.timeout_client, 30);
    assert.equal(c.add_header_xvirus, true);
    assert.equal(c.add_header_received, false);
    assert.equal(c.listen_addr, undefined);
    assert.equal(c.action_av, 'scan');
    assert.equal(c.action_av_notscanned, 'defer');
  });

  it('warns about a section written twice, at its second header, and about a key both set', () => {
    const r = buildConfig('[smtp]\nagent_enabled = yes\nnum_proc = 2\n[global]\n[SMTP]\nagent_enabled = no\nnum_thrd = 4\n', 'e.cfg');
    assert.deepEqual(r.diagnostics.map((d) => [d.severity, d.line, d.message]), [
      ['warning', 5, 'section [SMTP] repeated (first at line 1); both are read, in file order'],
      ['warning', 6, "option 'agent_enabled' repeated in [SMTP] (first at line 2); the last value is used"],
    ]);
    // as one section: the last value wins, and its line is the one in force
    assert.deepEqual([r.config.agent_enabled, r.config.num_proc, r.config.num_thrd, r.lines.agent_enabled], [false, 2, 4, 6]);
  });

  it('escapes what a file holds in every diagnostic: control characters and bytes that are not UTF-8', () => {
    const junk = Buffer.concat([
      Buffer.from('[smtp]\ncolour\x1b[2J = 1\nlisten_port = \x1b]0;owned\x07'), Buffer.from([0xc2, 0x9b, 0xff, 0x0d]),
      Buffer.from('x\n'),
    ]).toString('utf8');
    const lines = buildConfig(junk, 'e\x1b[31m.cfg').diagnostics.map(formatDiagnostic);
    assert.ok(lines.length >= 2, lines.join('\n'));
    for (const line of lines) assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f\ufffd]/, line);
    assert.ok(lines.some((l) => l.includes("cannot parse 'listen_port = \\x1b]0;owned\\x07\\x9b\\ufffd\\x0dx'")), lines.join('\n'));
    assert.ok(lines.every((l) => l.startsWith('e\\x1b[31m.cfg:')), lines.join('\n'));
  });

  it('parses integers with K, M and G (1024-based)', () => {
    assert.equal(parseIntWithUnit('26'), 26);
    assert.equal(parseIntWithUnit('4K'), 4096);
    assert.equal(parseIntWithUnit('2m'), 2 * 1024 * 1024);
    assert.equal(parseIntWithUnit('1G'), 1024 ** 3);
    assert.equal(parseIntWithUnit('1.5K'), undefined);
    assert.equal(parseIntWithUnit('-1'), undefined);
    assert.equal(parseIntWithUnit('ten'), undefined);
  });

  it('parses booleans as yes/no (and true/false, on/off)', () => {
    assert.deepEqual(parseOptionValue('agent_enabled', 'yes'), { ok: true, value: true });
    assert.deepEqual(parseOptionValue('agent_enabled', 'No'), { ok: true, value: false });
    assert.deepEqual(parseOptionValue('agent_enabled', 'true'), { ok: true, value: true });
    assert.equal(parseOptionValue('agent_enabled', 'maybe').ok, false);
  });

  it('checks enumerations and ranges', () => {
    assert.deepEqual(parseOptionValue('action_av', 'Reject'), { ok: true, value: 'reject' });
    assert.equal(parseOptionValue('action_av_infected', 'scan').ok, false, 'scan is only for action_av/action_as');
    assert.equal(parseOptionValue('listen_port', '70000').ok, false);
    assert.equal(parseOptionValue('listen_port', '0').ok, false);
    assert.deepEqual(parseOptionValue('syslog_class', 'error:summary'), { ok: true, value: ['error', 'summary'] });
    assert.equal(parseOptionValue('syslog_class', 'error:loud').ok, false);
  });

  it('takes daemon_sock_path as socket paths or host:port, comma-separated', () => {
    assert.deepEqual(parseOptionValue('daemon_sock_path', '/run/clamav/clamd.ctl'), { ok: true, value: ['/run/clamav/clamd.ctl'] });
    assert.deepEqual(
      parseOptionValue('daemon_sock_path', '127.0.0.1:3310, [::1]:3311'),
      { ok: true, value: ['127.0.0.1:3310', '[::1]:3311'] },
    );
    assert.equal(parseOptionValue('daemon_sock_path', 'clamd.sock').ok, false);
  });

  it('applies default < [global] < [smtp] < overrides', () => {
    const text = '[global]\naction_av_infected = defer\nav_clean_mode = strict\n[smtp]\naction_av_infected = discard\n';
    const r = buildConfig(text, 'e.cfg');
    assert.equal(r.ok, true);
    assert.equal(r.config.action_av_infected, 'discard');
    assert.equal(r.config.av_clean_mode, 'strict');
    assert.equal(buildConfig(text, 'e.cfg', { action_av_infected: 'accept' }).config.action_av_infected, 'accept');
  });

  it('ignores other agents\' sections without complaint', () => {
    const r = buildConfig('[pop3]\nagent_enabled = yes\nfoo = bar\n[smtp]\n', 'e.cfg');
    assert.deepEqual(r.diagnostics, []);
    assert.equal(r.config.agent_enabled, false);
  });

  it('warns about an unknown key, naming file and line', () => {
    const r = buildConfig('[smtp]\nagent_enabled = yes\nlisten_adr = 1.2.3.4\n', '/etc/esets.cfg');
    assert.equal(r.ok, true);
    assert.equal(formatDiagnostic(r.diagnostics[0]),
      "/etc/esets.cfg:3: warning: unknown option 'listen_adr' in [smtp] is ignored (did you mean 'listen_addr'?)");
  });

  it('accepts ESETS daemon keys in [global] quietly', () => {
    assert.deepEqual(buildConfig('[global]\nbase_dir = "/var/lib/esets"\n', 'e.cfg').diagnostics, []);
  });

  it('warns about an agent option in [global] and does not apply it', () => {
    const r = buildConfig('[global]\nlisten_port = 25\n', 'e.cfg');
    assert.equal(r.config.listen_port, undefined);
    assert.match(r.diagnostics[0].message, /belongs in \[smtp\]/);
  });

  it('reads av_banned_types as a comma list of the table\'s names, "" for none, an unknown name an error naming the line', () => {
    const ok = buildConfig('[smtp]\nav_banned_types = "EXE, script,html"\n', 'e.cfg');
    assert.equal(ok.ok, true);
    assert.deepEqual(ok.config.av_banned_types, ['exe', 'script', 'html']);
    assert.deepEqual(buildConfig('[smtp]\nav_banned_types = ""\n', 'e.cfg').config.av_banned_types, []);
    const bad = buildConfig('[global]\n\nav_banned_types = exe, pdf\n', 'e.cfg');
    assert.equal(bad.ok, false);
    assert.match(formatDiagnostic(bad.diagnostics[0]), /^e\.cfg:3: error: option 'av_banned_types' has invalid value 'exe, pdf': expected a comma-separated list/);
  });

  it('makes a wrong value an error naming file, line, key, value and what was expected', () => {
    const r = buildConfig('[smtp]\n\nlisten_port = 25x\n', '/etc/esets.cfg');
    assert.equal(r.ok, false);
    assert.equal(
      formatDiagnostic(r.diagnostics[0]),
      "/etc/esets.cfg:3: error: option 'listen_port' has invalid value '25x': expected an integer from 1 to 65535 (K, M, G units allowed)",
    );
  });

  it('records the line that set each option in force; an override has no line', () => {
    const r = buildConfig(
      '[global]\naction_av = reject\n[smtp]\nuser_config = "a.cfg"\n\nuser_config = "b.cfg"\naction_av = scan\n', 'e.cfg',
      { action_av_infected: 'defer' },
    );
    assert.deepEqual(r.lines, { user_config: 6, action_av: 7 });
    assert.equal(buildConfig('[smtp]\nuser_config = "a.cfg"\n', 'e.cfg', { user_config: 'c.cfg' }).lines.user_config, undefined);
  });

  it('takes null_sender_matches_sender_sections in [smtp] and [global] (default yes: the manual), refuses it in a bad form', () => {
    assert.equal(buildConfig('', 'e.cfg').config.null_sender_matches_sender_sections, true);
    assert.equal(
      buildConfig('[global]\nnull_sender_matches_sender_sections = no\n', 'e.cfg').config.null_sender_matches_sender_sections,
      false,
    );
    const smtp = buildConfig(
      '[global]\nnull_sender_matches_sender_sections = no\n[smtp]\nnull_sender_matches_sender_sections = yes\n', 'e.cfg',
    );
    assert.deepEqual([smtp.config.null_sender_matches_sender_sections, smtp.lines.null_sender_matches_sender_sections], [true, 4]);
    assert.equal(
      buildConfig('[smtp]\nnull_sender_matches_sender_sections = yes\n', 'e.cfg', { null_sender_matches_sender_sections: false })
        .config.null_sender_matches_sender_sections,
      false,
    );
    assert.deepEqual(buildConfig('[smtp]\nnull_sender_matches_sender_sections = sometimes\n', 'e.cfg').diagnostics.map(formatDiagnostic), [
      "e.cfg:2: error: option 'null_sender_matches_sender_sections' has invalid value 'sometimes': expected yes or no",
    ]);
  });

  it('takes address_routing in [smtp] and [global] (default refuse), refuses another value', () => {
    assert.equal(buildConfig('', 'e.cfg').config.address_routing, 'refuse');
    assert.equal(buildConfig('[global]\naddress_routing = delivered\n', 'e.cfg').config.address_routing, 'delivered');
    assert.deepEqual(buildConfig('[smtp]\naddress_routing = lenient\n', 'e.cfg').diagnostics.map(formatDiagnostic), [
      "e.cfg:2: error: option 'address_routing' has invalid value 'lenient': expected one of refuse, delivered",
    ]);
  });

  it('names the allowed values of an enumeration in the error', () => {
    const r = buildConfig('[smtp]\naction_av = quarantine\n', 'e.cfg');
    assert.match(r.diagnostics[0].message, /expected one of accept, scan, defer, discard, reject/);
  });

  it('reads the shipped default config/esets.cfg with no diagnostics', () => {
    const file = path.resolve(__dirname, '../../../config/esets.cfg');
    const r = buildConfig(fs.readFileSync(file, 'utf8'), file);
    assert.deepEqual(r.diagnostics, []);
    assert.equal(r.config.agent_enabled, true);
    assert.equal(r.config.listen_addr, '127.0.0.1');
    assert.equal(r.config.action_av, 'scan');
  });

  it('documents every option in the shipped config/esets.cfg', () => {
    const text = fs.readFileSync(path.resolve(__dirname, '../../../config/esets.cfg'), 'utf8');
    for (const key of Object.keys(OPTION_SPECS)) {
      assert.match(text, new RegExp(`^;?${key} = `, 'm'), `${key} missing from config/esets.cfg`);
    }
  });
});
