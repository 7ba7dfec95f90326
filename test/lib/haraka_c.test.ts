// Pure parts of the haraka -c deployment: the options Haraka's files govern
// (lib/haraka_deployment) and haraka-plugin-clamd's results as the AV verdict
// (lib/clamd_plugin_verdict), with the policy's reading of a skipped message.

import assert from 'node:assert/strict';
import { clamdPluginWarnings, pluginCopyDiffers, verdictFromClamdPlugin } from '../../src/lib/clamd_plugin_verdict';
import { buildConfig } from '../../src/lib/esets_config';
import { harakaCDiagnostics, HarakaInForce } from '../../src/lib/haraka_c_rules';
import { decideAv, describeAv, wasScanned } from '../../src/lib/policy';

const HARAKA: HarakaInForce = {
  listen: '127.0.0.1:2525', nodes: 1, addReceived: false, proxyHosts: [], maxBytes: 0, lineLength: 2050, postel: true,
  plugins: ['esets_connection_limits', 'esets_forward', 'esets_policy'],
};

function diagnose(text: string, haraka: Partial<HarakaInForce> = {}, withServer = true): string[] {
  const { config, lines } = buildConfig(text, 'esets.cfg');
  // the mail server esets_forward needs (its absence is a test of its own)
  if (withServer) Object.assign(config, { server_addr: config.server_addr ?? '10.0.0.9', server_port: config.server_port ?? 25 });
  return harakaCDiagnostics(config, lines, 'esets.cfg', { ...HARAKA, ...haraka }).map((d) => `${d.line}: ${d.key}: ${d.message}`);
}

describe('haraka -c: options that Haraka\'s files govern', () => {
  it('says nothing when esets.cfg agrees with Haraka or does not set them', () => {
    assert.deepEqual(diagnose('[smtp]\nagent_enabled = yes\nlisten_addr = "127.0.0.1"\nlisten_port = 2525\nnum_proc = 1\n'), []);
    assert.deepEqual(diagnose('[smtp]\nagent_enabled = yes\n'), []);
  });

  it('names the line, the value and the Haraka setting for each option set differently', () => {
    const out = diagnose([
      '[global]', 'daemon_user = "esets"',
      '[smtp]', 'listen_port = 25', 'num_proc = 4', 'add_header_received = yes', 'proxy_hosts = 10.0.0.1',
      'log_file = "/var/log/esets.log"',
    ].join('\n'));
    assert.deepEqual(out.map((l) => l.split(':').slice(0, 2).join(':')), [
      '4: listen_port', '5: num_proc', '6: add_header_received', '7: proxy_hosts', '2: daemon_user', '8: log_file',
    ]);
    assert.match(out[1], /num_proc = 4 not used under haraka -c: Haraka runs 1 worker process\(es\) \(config\/smtp\.ini \[main\] nodes\)/);
    assert.match(out[2], /add_header_received = yes not used .*add_received = false/);
  });

  it('warns about the default add_header_received (no) where Haraka adds its Received: line', () => {
    assert.match(diagnose('[smtp]\n', { addReceived: true })[0], /undefined: add_header_received: add_header_received = no \(the default\) not used/);
  });

  it('server_addr/server_port without esets_forward, timeout_client without esets_connection_limits, '
    + 'daemon_sock_path with haraka-plugin-clamd', () => {
    const text = '[global]\ndaemon_sock_path = "/run/clamd.sock"\n'
      + '[smtp]\nserver_addr = "10.0.0.5"\nserver_port = 25\ntimeout_client = 10\n';
    assert.deepEqual(diagnose(text), []);
    const out = diagnose(text, { plugins: ['clamd', 'esets_policy', 'queue/smtp_forward'] });
    assert.deepEqual(out.map((l) => l.split(':')[1].trim()), ['timeout_client', 'server_addr', 'server_port', 'daemon_sock_path']);
  });

  it('our plugins count as listed under the installed package\'s names (esets-relay/NAME) as under their own', () => {
    const text = '[global]\ndaemon_sock_path = "/run/clamd.sock"\n'
      + '[smtp]\nserver_addr = "10.0.0.5"\nserver_port = 25\ntimeout_client = 10\n';
    const packaged = ['esets-relay/esets_connection_limits', 'esets-relay/esets_forward', 'esets-relay/esets_policy'];
    assert.deepEqual(diagnose(text, { plugins: packaged }), []);
    // another package's plugin of the same last name is not ours
    assert.match(diagnose(text, { plugins: ['other/esets_policy'] }).join('\n'), /esets_policy is not in config\/plugins/);
  });
});

describe('haraka -c: two delivery paths', () => {
  it('queue/smtp_forward (any queue/ plugin) beside esets_forward: a warning that it never runs', () => {
    assert.deepEqual(diagnose('[smtp]\n', { plugins: ['esets_forward', 'esets_policy', 'queue/lmtp'] }).length, 1);
    const out = diagnose('[smtp]\n', { plugins: ['queue/smtp_forward', 'esets-relay/esets_forward', 'esets_policy'] });
    assert.equal(out.length, 1);
    assert.match(out[0], /queue\/smtp_forward in config\/plugins beside esets_forward.*never run/);
    assert.deepEqual(diagnose('[smtp]\n', { plugins: ['queue/smtp_forward', 'esets_policy'] }), []);
  });
});

describe('haraka -c and the launcher: esets_forward needs the mail server', () => {
  it('server_addr or server_port unset with esets_forward listed: an error each; without esets_forward, nothing', () => {
    const out = diagnose('[smtp]\nserver_port = 25\n', {}, false);
    assert.deepEqual(out, [
      "undefined: server_addr: option 'server_addr' is not set in [smtp]: esets_forward (in config/plugins) forwards each message "
        + 'to the mail server it names',
    ]);
    assert.equal(diagnose('[smtp]\n', { plugins: ['esets-relay/esets_forward', 'esets_policy'] }, false).length, 2);
    assert.deepEqual(diagnose('[smtp]\n', { plugins: ['esets_policy', 'queue/smtp_forward'] }, false), []);
  });
});

describe('haraka -c: Haraka\'s own size limit', () => {
  it('connection.ini [max] bytes set: a warning that Haraka answers 550 above it, naming message_size_limit', () => {
    assert.deepEqual(diagnose('[smtp]\n'), []);
    const out = diagnose('[smtp]\nmessage_size_limit = 20M\n', { maxBytes: 10_000_000 });
    assert.equal(out.length, 1);
    assert.match(out[0], /^2: message_size_limit: .*\[max\] bytes = 10000000.*550 Message too big!.*message_size_limit \(20971520\)/);
  });
});

describe('haraka -c: commands and addresses Haraka refuses where Postfix takes them', () => {
  it("Haraka's defaults (line_length 512, postel false): one warning naming both and what the launcher sets", () => {
    const out = diagnose('[smtp]\n', { lineLength: 512, postel: false });
    assert.equal(out.length, 1);
    assert.match(out[0], /over 510 characters .*521 Command line too long.*local part over 64 octets.*501.*line_length = 2050 and \[main\] postel = true/);
  });

  it('each setting alone, and none with the launcher\'s', () => {
    assert.match(diagnose('[smtp]\n', { lineLength: 1000 })[0], /over 998 characters/);
    assert.doesNotMatch(diagnose('[smtp]\n', { lineLength: 1000 })[0], /64 octets/);
    assert.match(diagnose('[smtp]\n', { postel: false })[0], /^undefined: undefined: Haraka refuses commands .*64 octets/);
    assert.deepEqual(diagnose('[smtp]\n', { lineLength: 4096, postel: true }), []);
  });
});

describe('haraka -c: our plugins missing from config/plugins', () => {
  it('without esets_policy: an error (nothing would be scanned); without the others: what they would apply, warned', () => {
    const text = '[smtp]\nmax_connections = 5\nhttp_listen = "127.0.0.1:8080"\nuser_config = "users.cfg"\n';
    const { config, lines } = buildConfig(text, 'esets.cfg');
    const out = harakaCDiagnostics({ ...config, server_addr: '10.0.0.9', server_port: 25 }, lines, 'esets.cfg', {
      ...HARAKA, plugins: ['esets_forward'],
    });
    assert.deepEqual(out.filter((d) => d.severity === 'error').map((d) => d.message), [
      'esets_policy is not in config/plugins: no message would be scanned (Haraka is not started; list it, see docs/haraka_c.md)',
    ]);
    assert.deepEqual(
      out.filter((d) => d.severity === 'warning').map((d) => `${d.line}: ${d.key}`),
      ['2: max_connections', '4: user_config', '3: http_listen'],
    );
  });
});

describe('haraka-plugin-clamd results as the AV verdict', () => {
  it('pass = clean, fail = infected, err = not scanned, skip = not applied, nothing = not scanned', () => {
    assert.deepEqual(verdictFromClamdPlugin({ pass: ['clean'] }), { kind: 'clean' });
    assert.deepEqual(verdictFromClamdPlugin({ fail: ['Eicar-Test-Signature'] }), { kind: 'infected', names: ['Eicar-Test-Signature'] });
    assert.equal(verdictFromClamdPlugin({ err: ['clamd timed out'] }).kind, 'not_scanned');
    assert.deepEqual(
      verdictFromClamdPlugin({ skip: ['no attachments'] }),
      { kind: 'skipped', reason: 'haraka-plugin-clamd skipped it (no attachments)' },
    );
    assert.equal(verdictFromClamdPlugin(undefined).kind, 'not_scanned');
    assert.equal(verdictFromClamdPlugin({}).kind, 'not_scanned');
  });

  it('a skip for its max_size is a limit: not scanned (action_av_notscanned), not an exclusion', () => {
    assert.deepEqual(
      verdictFromClamdPlugin({ skip: ['exceeds max size'] }),
      { kind: 'not_scanned', reason: 'haraka-plugin-clamd: exceeds max size' },
    );
  });

  it('refuses what the plugin would read otherwise than the relay: a single leading dot, a header over Haraka\'s max_lines', () => {
    assert.equal(pluginCopyDiffers({ headerLineCount: 10 }, 1000), undefined);
    assert.match(pluginCopyDiffers({ leadingDotLine: 7, headerLineCount: 10 }, 1000)!, /^line 7 starts with a single dot/);
    assert.match(pluginCopyDiffers({ headerless: true, headerLineCount: 1 }, 1000)!, /^no header section/);
    assert.match(pluginCopyDiffers({ headerLineCount: 1001 }, 1000)!, /a header of 1001 lines, over Haraka's 1000/);
  });

  it('limits and encryption alerts are "not scanned", unless a real signature is among them', () => {
    assert.equal(verdictFromClamdPlugin({ fail: ['Heuristics.Limits.Exceeded.MaxRecursion'] }).kind, 'not_scanned');
    assert.equal(verdictFromClamdPlugin({ fail: ['Heuristics.Encrypted.Zip'] }).kind, 'not_scanned');
    assert.deepEqual(
      verdictFromClamdPlugin({ fail: ['Heuristics.Encrypted.Zip', 'Eicar-Test-Signature'] }),
      { kind: 'infected', names: ['Eicar-Test-Signature'] },
    );
  });

  it('a fail outweighs a pass or an err from another attempt; an err outweighs a pass', () => {
    assert.equal(verdictFromClamdPlugin({ pass: ['clean'], fail: ['Eicar-Test-Signature'] }).kind, 'infected');
    assert.equal(verdictFromClamdPlugin({ pass: ['clean'], err: ['error on host a'] }).kind, 'not_scanned');
  });

  it('a skipped message passes the AV stage (action_av decides), is described and gets no X-Virus-Scanner', () => {
    const { config } = buildConfig('[smtp]\naction_av_notscanned = reject\n', 'e.cfg');
    const skipped = verdictFromClamdPlugin({ skip: ['no attachments'] });
    assert.deepEqual(decideAv(config, skipped), { action: 'accept', option: 'action_av' });
    assert.equal(describeAv(skipped, config), 'not scanned: haraka-plugin-clamd skipped it (no attachments)');
    assert.equal(wasScanned(skipped), false);
    assert.equal(wasScanned({ kind: 'not_scanned', reason: 'x' }), false);
    assert.equal(wasScanned({ kind: 'clean' }), true);
    assert.equal(wasScanned({ kind: 'infected', names: ['x'] }), true);
  });

  it('warns about clamd.ini settings that keep the policy from deciding', () => {
    const ok = { rejectVirus: false, rejectError: false, timeoutS: 25, hookTimeoutS: 30 };
    assert.deepEqual(clamdPluginWarnings(ok, 420), []);
    assert.match(clamdPluginWarnings({ ...ok, rejectVirus: true }, 420).join(), /\[reject\] virus = true/);
    assert.match(clamdPluginWarnings({ ...ok, rejectError: true }, 420).join(), /\[reject\] error = true/);
    assert.match(clamdPluginWarnings({ ...ok, timeoutS: 30 }, 420).join(), /not below Haraka's hook timeout/);
    assert.match(clamdPluginWarnings(ok, 20).join(), /above what timeout_message leaves scanning/);
  });
});
