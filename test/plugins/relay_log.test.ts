// relayLog: each class of line to Haraka's log (syslog_facility = none) or to
// syslog when syslog_class lists it; debug lines built only when written.

import assert from 'node:assert/strict';
import { DEFAULT_CONFIG, EsetsConfig, SyslogClass } from '../../src/lib/esets_options';
import { forgetRelayConfig } from '../../src/plugins/shared/relay_config';
import { relayLog } from '../../src/plugins/shared/relay_log';
import { word } from '../../src/lib/syslog';
import { fakePlugin } from '../support/fake_plugin';
import { useHarakaDir } from '../support/haraka_dir';
import { eventually } from '../support/processes';
import { Rsyslog, startRsyslog } from '../support/rsyslog';

const config = (over: Partial<EsetsConfig>): EsetsConfig => ({ ...DEFAULT_CONFIG, ...over });
const ALL: SyslogClass[] = ['error', 'warning', 'summary', 'info', 'debug'];

describe('relayLog', function () {
  this.timeout(20_000);

  it("syslog_facility = none: Haraka's log, error at ERROR, warning at WARN, info at NOTICE, each line escaped", () => {
    const plugin = fakePlugin();
    const log = relayLog(plugin, undefined, config({ syslog_facility: 'none' }));
    log.error('e\nfake');
    log.warning('w');
    log.info('i');
    assert.deepEqual(plugin.logs, [
      { level: 'error', text: 'e\\x0afake' }, { level: 'warn', text: 'w' }, { level: 'notice', text: 'i' },
    ]);
  });

  it('a class syslog_class does not list: nothing written, and a debug line is not even built', () => {
    const plugin = fakePlugin();
    const log = relayLog(plugin, undefined, config({
      syslog_facility: 'mail', syslog_class: ['summary'], syslog_socket: '/nonexistent/log.sock',
    }));
    let built = 0;
    log.error('e');
    log.warning('w');
    log.info('i');
    log.debug(() => { built++; return 'd'; });
    assert.equal(built, 0);
    assert.equal(log.wants('debug'), false);
    assert.equal(log.wants('summary'), true);
    assert.deepEqual(plugin.logs, []);
  });

  it("no configuration can be loaded: the line still goes to Haraka's log, nothing thrown", () => {
    useHarakaDir('[smtp]\nagent_enabled = maybe\n');
    try {
      const plugin = fakePlugin();
      relayLog(plugin).warning('still said');
      assert.deepEqual(plugin.logs, [{ level: 'warn', text: 'still said' }]);
    } finally {
      forgetRelayConfig();
    }
  });

  describe('to a real rsyslogd', () => {
    let rsyslog: Rsyslog;
    before(async () => { rsyslog = await startRsyslog(); });
    after(async () => { await rsyslog?.stop(); });

    it('every class syslog_class lists, at facility.severity of its class, one record each', async () => {
      const plugin = fakePlugin();
      const log = relayLog(plugin, undefined, config({ syslog_facility: 'local4', syslog_class: ALL, syslog_socket: rsyslog.socket }));
      log.error('unit-error <0>x');
      log.warning('unit-warning');
      log.info('unit-info');
      log.debug(() => [['event', word('unit_debug')], ['value', 'a "b"\nc']]);
      const want = [
        'local4.err esets_smtp[N]: unit-error <0>x',
        'local4.warning esets_smtp[N]: unit-warning',
        'local4.info esets_smtp[N]: unit-info',
        'local4.debug esets_smtp[N]: event=unit_debug value="a \\"b\\"\\x0ac"',
      ];
      const ours = (): string[] => rsyslog.read().split('\n').filter((l) => /unit[-_]/.test(l)).map((l) => l.replace(/\[\d+\]/, '[N]')).sort();
      assert.ok(await eventually(() => ours().length >= want.length, 10_000), ours().join('\n'));
      assert.deepEqual(ours(), [...want].sort());
      assert.deepEqual(plugin.logs, [], "nothing in Haraka's log");
    });
  });
});
