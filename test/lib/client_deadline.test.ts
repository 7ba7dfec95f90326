import assert from 'node:assert/strict';
import { msUntilOverdue, overdue, overdueByMs, requestBudgetMs, sessionCutAllowed } from '../../src/lib/client_deadline';

const d = { timeoutClientS: 3, minRate: 500, sessionS: 60 };
const t = (o: Partial<{ sessionMs: number; requestMs: number; requestBytes: number; stalledMs: number }>) =>
  ({ sessionMs: 0, requestMs: 0, requestBytes: 0, stalledMs: 0, ...o });

describe('client deadlines (lib/client_deadline)', () => {
  it('a request may take timeout_client plus one second per client_min_rate bytes', () => {
    assert.equal(requestBudgetMs(d, 1), 3002);
    assert.equal(requestBudgetMs(d, 1000), 5000);
    assert.equal(overdue(d, t({ requestMs: 4999, requestBytes: 1000 })), undefined);
    assert.equal(overdue(d, t({ requestMs: 5000, requestBytes: 1000 })), 'request');
  });

  it('a slow drip (a byte a second) is overdue soon after timeout_client', () => {
    // after n seconds n bytes: budget 3 s + n/500 s
    assert.equal(overdue(d, t({ requestMs: 3000, requestBytes: 3 })), undefined);
    assert.equal(overdue(d, t({ requestMs: 3100, requestBytes: 4 })), 'request');
  });

  it('no request deadline before its first byte (a silent client is timeout_client\'s), with client_min_rate 0 '
    + 'or timeout_client 0', () => {
    assert.equal(requestBudgetMs(d, 0), Infinity);
    assert.equal(requestBudgetMs({ ...d, minRate: 0 }, 10), Infinity);
    assert.equal(requestBudgetMs({ ...d, timeoutClientS: 0 }, 10), Infinity);
    assert.equal(overdue({ ...d, minRate: 0 }, t({ requestMs: 1e9 })), undefined);
  });

  it('the session bound comes first; 0 is no bound', () => {
    assert.equal(overdue(d, t({ sessionMs: 60_000, requestMs: 1e9 })), 'session');
    assert.equal(overdue({ ...d, sessionS: 0, minRate: 0 }, t({ sessionMs: 1e12 })), undefined);
  });

  it('stuck input is overdue after timeout_client', () => {
    assert.equal(overdue({ ...d, minRate: 0 }, t({ stalledMs: 2999 })), undefined);
    assert.equal(overdue({ ...d, minRate: 0 }, t({ stalledMs: 3000 })), 'stalled');
  });

  it('time left: the nearest bound; the stall clock only while stalled', () => {
    assert.equal(msUntilOverdue(d, t({ requestMs: 1000, requestBytes: 500 }), false), 3000);
    assert.equal(msUntilOverdue(d, t({ sessionMs: 59_500 }), false), 500);
    assert.equal(msUntilOverdue({ ...d, minRate: 0 }, t({ stalledMs: 1000 }), true), 2000);
    assert.equal(msUntilOverdue({ ...d, minRate: 0, sessionS: 0 }, t({ stalledMs: 1000 }), false), Infinity);
    assert.equal(msUntilOverdue(d, t({ requestMs: 9000, requestBytes: 1 }), false), 0);
  });

  it('how far past a bound; the session bound waits for the end of a transaction, timeout_client at most', () => {
    assert.equal(overdueByMs(d, t({ sessionMs: 61_000 }), 'session'), 1000);
    assert.equal(overdueByMs(d, t({ requestMs: 3500, requestBytes: 250 }), 'request'), 0);
    assert.equal(overdueByMs(d, t({ requestMs: 4000, requestBytes: 250 }), 'request'), 500);
    assert.equal(overdueByMs({ ...d, minRate: 0 }, t({ requestMs: 3500 }), 'request'), 0);
    const at = (inTransaction: boolean, sendingCommand: boolean, sendingMessage = false): Parameters<typeof sessionCutAllowed>[2] => ({
      inTransaction, sendingCommand, sendingMessage,
    });
    assert.equal(sessionCutAllowed(d, 0, at(false, false)), true);
    assert.equal(sessionCutAllowed(d, 0, at(true, true)), true);
    assert.equal(sessionCutAllowed(d, 2999, at(true, false)), false);
    assert.equal(sessionCutAllowed(d, 3000, at(true, false)), true);
    // a message being sent is the rate floor's, however far past the session bound
    assert.equal(sessionCutAllowed(d, 1e9, at(true, false, true)), false);
  });
});
