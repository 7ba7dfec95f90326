import assert from 'node:assert/strict';
import { parseEsetsCfg } from '../../src/lib/esets_cfg_parser';

describe('esets.cfg parser', () => {
  it('reads sections and key = value lines with their line numbers', () => {
    const p = parseEsetsCfg('[global]\ndaemon_sock_path = "/run/x"\n\n[smtp]\nagent_enabled = yes\n', 'e.cfg');
    assert.deepEqual(p.diagnostics, []);
    assert.deepEqual(p.sections.map((s) => [s.name, s.line]), [['global', 1], ['smtp', 4]]);
    assert.deepEqual(p.sections[1].entries, [{ key: 'agent_enabled', value: 'yes', quoted: false, line: 5 }]);
  });

  it('skips # and ; comment lines, blank lines and indentation', () => {
    const p = parseEsetsCfg('# a comment\n;action_av = scan\n   \n[smtp]\n  ; num_proc = 4\n\tnum_proc = 2\n', 'e.cfg');
    assert.deepEqual(p.diagnostics, []);
    assert.deepEqual(p.sections[0].entries.map((e) => [e.key, e.value, e.line]), [['num_proc', '2', 6]]);
  });

  it('removes double quotes and keeps what is inside, including spaces and #', () => {
    const p = parseEsetsCfg('[smtp]\nuser_config = "my users #1.cfg"\nlisten_addr = 127.0.0.1\n', 'e.cfg');
    const [a, b] = p.sections[0].entries;
    assert.deepEqual([a.value, a.quoted], ['my users #1.cfg', true]);
    assert.deepEqual([b.value, b.quoted], ['127.0.0.1', false]);
  });

  it('tolerates no spaces around = and CRLF line ends', () => {
    const p = parseEsetsCfg('[smtp]\r\nlisten_port=2525\r\n', 'e.cfg');
    assert.deepEqual(p.diagnostics, []);
    assert.equal(p.sections[0].entries[0].value, '2525');
  });

  it('lower-cases keys', () => {
    const p = parseEsetsCfg('[smtp]\nAgent_Enabled = yes\n', 'e.cfg');
    assert.equal(p.sections[0].entries[0].key, 'agent_enabled');
  });

  it('keeps user-section names such as [a@b.c], [|a@b.c] and [org|b.c] verbatim', () => {
    const p = parseEsetsCfg('[a@b.c]\n[|a@b.c]\n[org|b.c]\n', 'u.cfg');
    assert.deepEqual(p.sections.map((s) => s.name), ['a@b.c', '|a@b.c', 'org|b.c']);
  });

  it('reports a line it cannot parse as an error with file and line', () => {
    const p = parseEsetsCfg('[smtp]\nagent_enabled yes\n', 'e.cfg');
    assert.equal(p.diagnostics.length, 1);
    assert.deepEqual([p.diagnostics[0].severity, p.diagnostics[0].file, p.diagnostics[0].line], ['error', 'e.cfg', 2]);
    assert.match(p.diagnostics[0].message, /agent_enabled yes/);
  });

  it('reports an unterminated quote', () => {
    const p = parseEsetsCfg('[smtp]\nlisten_addr = "127.0.0.1\n', 'e.cfg');
    assert.equal(p.diagnostics[0].severity, 'error');
    assert.equal(p.diagnostics[0].line, 2);
    assert.match(p.diagnostics[0].message, /unterminated double quote/);
  });

  it('reports `[]` as a malformed section header, and reads nothing under it', () => {
    for (const header of ['[]', '[ ]']) {
      const p = parseEsetsCfg(`[global]\n${header}\nlisten_port = 1\n[smtp]\nnum_proc = 2\n`, 'e.cfg');
      assert.deepEqual(p.diagnostics.map((d) => [d.severity, d.line]), [['error', 2]], header);
      assert.match(p.diagnostics[0].message, new RegExp(`^malformed section header '\\[ ?\\]'`));
      assert.deepEqual(p.sections.map((s) => [s.name, s.entries.length]), [['global', 0], ['smtp', 1]]);
    }
  });

  it('says that a comment after a quoted value belongs on its own line (an error, as before)', () => {
    const p = parseEsetsCfg('[smtp]\nserver_addr = "127.0.0.1" # the server\nhelo_name = "a\\"b" ; x\nlisten_addr = "x" y\n', 'e.cfg');
    assert.deepEqual(p.diagnostics.map((d) => [d.severity, d.line, d.message]), [
      ['error', 2, "option 'server_addr': a comment after the value ('# the server'): comments go on their own line, "
        + "one starting with '#' or ';'"],
      ['error', 3, "option 'helo_name': a comment after the value ('; x'): comments go on their own line, one starting with '#' or ';'"],
      ['error', 4, "option 'listen_addr': text after the closing double quote: 'y'"],
    ]);
  });

  it('reports an option before any section', () => {
    const p = parseEsetsCfg('agent_enabled = yes\n[smtp]\n', 'e.cfg');
    assert.equal(p.diagnostics[0].severity, 'error');
    assert.equal(p.diagnostics[0].line, 1);
    assert.match(p.diagnostics[0].message, /before any \[section\]/);
  });

  it('warns about a repeated key and keeps the last value', () => {
    const p = parseEsetsCfg('[smtp]\nnum_proc = 1\nnum_proc = 3\n', 'e.cfg');
    assert.equal(p.diagnostics[0].severity, 'warning');
    assert.equal(p.diagnostics[0].line, 3);
    assert.match(p.diagnostics[0].message, /first at line 2/);
    assert.deepEqual(p.sections[0].entries.map((e) => e.value), ['3']);
  });
});
