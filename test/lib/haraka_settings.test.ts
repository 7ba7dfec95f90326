import assert from 'node:assert/strict';
import { buildConfig } from '../../src/lib/esets_config';
import { deriveHarakaSettings, formatListen } from '../../src/lib/haraka_settings';
import { formatIni, mergeIni, parseIni } from '../../src/lib/ini';

const BASE = '[global]\ndaemon_sock_path = "/run/clamd.sock, 10.0.0.5:3310"\n'
  + '[smtp]\nagent_enabled = yes\nlisten_addr = "::1"\nlisten_port = 25\nserver_addr = "mx.local"\nserver_port = 10025\n'
  + 'num_proc = 3\ntimeout_client = 45\nadd_header_received = yes\n';

describe('Haraka settings derived from esets.cfg', () => {
  it('maps listen, num_proc, timeout_client and add_header_received', () => {
    const s = deriveHarakaSettings(buildConfig(BASE, '/e.cfg').config, '/e.cfg', {});
    assert.deepEqual(s.diagnostics, []);
    assert.deepEqual(s.iniFiles['smtp.ini'].main, { listen: '[::1]:25', nodes: '3', inactivity_timeout: '45' });
    assert.equal(s.iniFiles['connection.ini'].headers.add_received, 'true');
    assert.equal(s.iniFiles['esets_relay.ini'].main.esets_cfg, '/e.cfg');
  });

  it('passes command-line overrides to the plugins in esets.cfg spelling', () => {
    const s = deriveHarakaSettings(buildConfig(BASE, '/e.cfg').config, '/e.cfg', { add_header_xvirus: false, action_av: 'reject' });
    assert.deepEqual(s.iniFiles['esets_relay.ini'].overrides, { add_header_xvirus: 'no', action_av: 'reject' });
  });

  it('refuses agent_enabled = no, naming the option to set', () => {
    const s = deriveHarakaSettings(buildConfig(BASE.replace('agent_enabled = yes', 'agent_enabled = no'), '/e.cfg').config, '/e.cfg', {});
    assert.equal(s.diagnostics.length, 1);
    assert.match(s.diagnostics[0].message, /set 'agent_enabled = yes' in \[smtp\]/);
  });

  it('locates agent_enabled = no at the line that says it, even in a second [smtp]', () => {
    const built = buildConfig(`${BASE}[smtp]\nagent_enabled = no\n`, '/e.cfg');
    const s = deriveHarakaSettings(built.config, '/e.cfg', {}, built.lines);
    assert.deepEqual(s.diagnostics.map((d) => [d.line, d.key]), [[13, 'agent_enabled']]);
  });

  it('requires listen and server addresses (the manual gives them no default)', () => {
    const s = deriveHarakaSettings(buildConfig('[smtp]\nagent_enabled = yes\n', '/e.cfg').config, '/e.cfg', {});
    assert.deepEqual(s.diagnostics.map((d) => d.key), ['listen_addr', 'listen_port', 'server_addr', 'server_port']);
  });

  it('brackets IPv6 listen addresses only', () => {
    assert.equal(formatListen('0.0.0.0', 25), '0.0.0.0:25');
    assert.equal(formatListen('::', 25), '[::]:25');
  });
});

describe('ini files', () => {
  it('reads, merges and writes back sections and top-level keys', () => {
    const base = parseIni('; comment\ntop=1\n[main]\nlisten=1.2.3.4:25\nnodes=4\n[other]\nx=y\n');
    const merged = mergeIni(base, { main: { nodes: '2' }, added: { k: 'v' } });
    assert.deepEqual(parseIni(formatIni(merged)), {
      '': { top: '1' }, main: { listen: '1.2.3.4:25', nodes: '2' }, other: { x: 'y' }, added: { k: 'v' },
    });
  });

  it("keeps every line of a list key (haraka-config's `hosts[]`), and a list given replaces the file's whole", () => {
    const base = parseIni('[haproxy]\nhosts[] = 192.0.2.4\nhosts[] = 192.0.2.5\n[main]\nx=1\n');
    assert.deepEqual(base.haproxy, { 'hosts[]': ['192.0.2.4', '192.0.2.5'] });
    assert.equal(formatIni(base), '[haproxy]\nhosts[]=192.0.2.4\nhosts[]=192.0.2.5\n[main]\nx=1\n');
    const merged = mergeIni(base, { haproxy: { 'hosts[]': ['10.0.0.1/32'] } });
    assert.deepEqual(parseIni(formatIni(merged)).haproxy, { 'hosts[]': ['10.0.0.1/32'] });
  });
});

describe('proxy_hosts (PROXY protocol from load balancers)', () => {
  it('writes each balancer to connection.ini [haproxy] hosts[], with an explicit prefix (a bare IPv6 would mean its /64)', () => {
    const s = deriveHarakaSettings(
      buildConfig(`${BASE}proxy_hosts = "127.0.0.2, 2001:DB8::1, [2001:db8::2], 10.1.0.0/16"\n`, '/e.cfg').config, '/e.cfg', {},
    );
    assert.deepEqual(s.iniFiles['connection.ini'].haproxy, {
      enabled: 'true', 'hosts[]': ['127.0.0.2/32', '2001:db8::1/128', '2001:db8::2/128', '10.1.0.0/16'],
    });
  });

  it('writes nothing of [haproxy] without proxy_hosts (an operator config folder keeps its own)', () => {
    const s = deriveHarakaSettings(buildConfig(BASE, '/e.cfg').config, '/e.cfg', {});
    assert.equal(s.iniFiles['connection.ini'].haproxy, undefined);
  });

  it('refuses what is not an address or network, naming the line', () => {
    for (const bad of ['lb.example.com', '10.0.0.1/33', '2001:db8::1/129', '10.0.0.256', '']) {
      const r = buildConfig(`${BASE}proxy_hosts = "${bad}"\n`, '/e.cfg');
      assert.equal(r.ok, false, bad);
      assert.match(r.diagnostics.find((d) => d.severity === 'error')!.message, /proxy_hosts/, bad);
    }
  });
});
