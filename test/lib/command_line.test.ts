import assert from 'node:assert/strict';
import { commandLineOptions, helpText, parseCommandLine } from '../../src/lib/command_line';

describe('esets_smtp command line', () => {
  it('defaults to config/esets.cfg and no overrides', () => {
    const c = parseCommandLine([]);
    assert.deepEqual([c.command, c.configPath, c.overrides, c.diagnostics], ['run', 'config/esets.cfg', {}, []]);
  });

  it('recognises -h/--help and -v/--version', () => {
    assert.equal(parseCommandLine(['-h']).command, 'help');
    assert.equal(parseCommandLine(['--help']).command, 'help');
    assert.equal(parseCommandLine(['-v']).command, 'version');
    assert.equal(parseCommandLine(['--version']).command, 'version');
  });

  it('takes --config FILE, --config=FILE and -c FILE', () => {
    assert.equal(parseCommandLine(['--config', '/etc/esets/esets.cfg']).configPath, '/etc/esets/esets.cfg');
    assert.equal(parseCommandLine(['--config=/x.cfg']).configPath, '/x.cfg');
    assert.equal(parseCommandLine(['-c', 'y.cfg']).configPath, 'y.cfg');
  });

  it('takes integer options with dashes or underscores and K/M/G units', () => {
    const c = parseCommandLine(['--listen-port', '2525', '--server_port=26', '--av-scan-obj-max-size', '4K']);
    assert.deepEqual(c.overrides, { listen_port: 2525, server_port: 26, av_scan_obj_max_size: 4096 });
  });

  it('takes booleans as --opt and --no-opt without an argument', () => {
    const c = parseCommandLine(['--agent-enabled', '--no-add-header-xvirus', '--add_header_received']);
    assert.deepEqual(c.overrides, { agent_enabled: true, add_header_xvirus: false, add_header_received: true });
  });

  it('takes string options, quoted or not', () => {
    assert.deepEqual(parseCommandLine(['--listen-addr', '"0.0.0.0"']).overrides, { listen_addr: '0.0.0.0' });
    assert.deepEqual(parseCommandLine(['--action-av', 'reject']).overrides, { action_av: 'reject' });
  });

  it('refuses an unknown option, a [global]-only option, a missing value and a bad value', () => {
    const msgs = (args: string[]): string[] => parseCommandLine(args).diagnostics.map((d) => d.message);
    assert.match(msgs(['--listen-prot', '1'])[0], /unknown option '--listen-prot'/);
    // one error for an unknown option and its value; the next option is still read
    assert.deepEqual(msgs(['--listen-prot', '1', '--listen-port', 'x']).length, 2);
    assert.match(msgs(['--listen-prot', '1', '--listen-port', 'x'])[1], /invalid value 'x'/);
    assert.match(msgs(['--daemon-sock-path', '/x'])[0], /unknown option/);
    assert.match(msgs(['--listen-port'])[0], /needs a value/);
    assert.match(msgs(['--listen-port', 'abc'])[0], /invalid value 'abc': expected an integer/);
    assert.match(msgs(['--no-listen-port'])[0], /unknown option/);
    assert.match(msgs(['stray'])[0], /unexpected argument 'stray'/);
  });

  it('spells the launcher\'s own options as freely as the others: --Check as --Config', () => {
    for (const arg of ['--Check', '--CHECK', '-t', '--check']) {
      const c = parseCommandLine([arg, '--Config', '/x.cfg']);
      assert.deepEqual([c.command, c.configPath, c.diagnostics], ['check', '/x.cfg', []], arg);
    }
    assert.equal(parseCommandLine(['--Help']).command, 'help');
    assert.equal(parseCommandLine(['--VERSION']).command, 'version');
  });

  it('says that --check, --help and --version take no value', () => {
    for (const arg of ['--check=yes', '--Help=1', '--version=']) {
      const c = parseCommandLine([arg]);
      assert.equal(c.command, 'run', arg);
      assert.equal(c.diagnostics.length, 1, arg);
      assert.match(c.diagnostics[0].message, new RegExp(`^option '${arg.replace(/=.*/, '')}' takes no value`), arg);
    }
  });

  it('refuses --config with --haraka-dir in any spelling', () => {
    for (const config of [['--config=/x'], ['--CONFIG=/x'], ['--Config', '/x'], ['-c', '/x']]) {
      const c = parseCommandLine(['--check', ...config, '--haraka-dir', '/d']);
      assert.ok(c.diagnostics.some((d) => /^--config is not used with --haraka-dir/.test(d.message)), config.join(' '));
    }
    assert.deepEqual(parseCommandLine(['--check', '--haraka-dir', '/d']).diagnostics, []);
  });

  it('lists every command-line option in --help', () => {
    const text = helpText('esets_smtp');
    for (const name of commandLineOptions()) assert.ok(text.includes(name.replace(/_/g, '-')), name);
    assert.match(text, /--\[no-\]agent-enabled/);
  });
});
