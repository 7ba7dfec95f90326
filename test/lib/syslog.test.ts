import assert from 'node:assert/strict';
import { errorLine, isLogged, priorityPrefixed, summaryLine, syslogPriority } from '../../src/lib/syslog';

describe('syslog lines', () => {
  it("logs summaries at NOTICE for accept and WARNING otherwise, errors at ERR (the manual's priorities)", () => {
    assert.deepEqual(summaryLine(true, 'x'), { logClass: 'summary', severity: 'notice', text: 'x' });
    assert.equal(summaryLine(false, 'x').severity, 'warning');
    assert.equal(errorLine('x').severity, 'err');
  });

  it('computes priorities from facility and severity', () => {
    assert.equal(syslogPriority('mail', 'notice'), 2 * 8 + 5);
    assert.equal(syslogPriority('daemon', 'err'), 3 * 8 + 3);
    assert.equal(syslogPriority('local7', 'warning'), 23 * 8 + 4);
  });

  it('filters by syslog_class', () => {
    assert.equal(isLogged(summaryLine(true, 'x'), ['error', 'summary']), true);
    assert.equal(isLogged(summaryLine(true, 'x'), ['error', 'warning']), false);
  });

  it('writes one prefixed line with no line breaks inside', () => {
    assert.equal(priorityPrefixed('mail', summaryLine(false, 'a\r\nb')), '<20>a b\n');
  });
});
