import assert from 'node:assert/strict';
import { buildConfig } from '../../src/lib/esets_config';
import {
  budgetDiagnostics, drainMs, HOOK_TIMEOUT_S, longestSessionStepMs, MAX_TIMEOUT_MESSAGE_S, messageBudget, RFC_END_OF_DATA_S,
} from '../../src/lib/timeout_budget';

const config = (extra = '', global = ''): ReturnType<typeof buildConfig>['config'] =>
  buildConfig(`[global]\ndaemon_sock_path = "/a.sock"\n${global}[smtp]\nagent_enabled = yes\n${extra}`, '/e.cfg').config;

describe('timeout budget (lib/timeout_budget)', () => {
  it('the defaults: one clamd scan of 60 s, the end of data answered within 540 s, under the 600 s a client waits', () => {
    const b = messageBudget(config());
    assert.equal(b.clamdScanMs, 60_000);
    assert.equal(b.endOfDataMs, 540_000);
    assert.ok(b.endOfDataMs < RFC_END_OF_DATA_S * 1000);
    // connect 2 s + scan 60 s; spam stage off by default
    assert.equal(b.scanningNeedMs, 62_000);
    assert.equal(b.scanningMs, 62_000);
  });

  it('counts every daemon once, cleaning once more, and spamd', () => {
    const b = messageBudget(config(
      'av_scan_obj_timeout = 20\nav_clean_mode = standard\naction_as = scan\nspamd_timeout = 15\n',
      'daemon_sock_path = "/a.sock, /b.sock"\n',
    ));
    assert.equal(b.scanningNeedMs, 2 * (2_000 + 20_000) + 20_000 + 15_000);
  });

  it('scanning never takes the whole end of data: the mail server keeps its share, and the config is warned about', () => {
    const c = config('av_scan_obj_timeout = 300\n', 'daemon_sock_path = "/a.sock, /b.sock"\n');
    const b = messageBudget(c);
    assert.equal(b.scanningMs, 540_000 - 120_000);
    const [d] = budgetDiagnostics(c, '/e.cfg');
    assert.equal(d.severity, 'warning');
    assert.equal(d.key, 'timeout_message');
    assert.match(d.message, /may need 604 s .* more than the 420 s timeout_message = 540 leaves them/);
    assert.deepEqual(budgetDiagnostics(config(), '/e.cfg'), []);
  });

  it('a short timeout_message (a Postfix proxy filter waits 100 s) splits in half at most', () => {
    const b = messageBudget(config('timeout_message = 100\n'));
    assert.equal(b.scanningMs, Math.min(62_000, 50_000));
    // the warning names the line that set it
    const parsed = buildConfig('[global]\ndaemon_sock_path = "/a.sock"\n[smtp]\ntimeout_message = 100\n', '/e.cfg');
    assert.equal(parsed.diagnostics[0]?.line, 4);
  });

  it("Haraka's hook timeouts sit above any timeout_message (a live edit cannot pass them) and the longest server step", () => {
    assert.ok(HOOK_TIMEOUT_S > MAX_TIMEOUT_MESSAGE_S);
    assert.ok(HOOK_TIMEOUT_S * 1000 > longestSessionStepMs());
    assert.ok(MAX_TIMEOUT_MESSAGE_S < RFC_END_OF_DATA_S);
  });

  it('TERM drains for one more client silence and a whole end of data', () => {
    assert.equal(drainMs(config('timeout_client = 20\ntimeout_message = 100\n')), 120_000);
  });

  it('timeout_message stays under RFC 5321\'s 600 s', () => {
    const r = buildConfig('[smtp]\ntimeout_message = 600\n', '/e.cfg');
    assert.equal(r.ok, false);
    assert.match(r.diagnostics[0].message, /timeout_message/);
  });
});
