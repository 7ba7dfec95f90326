import assert from 'node:assert/strict';
import { RestartBackoff } from '../../src/lib/restart_backoff';

const settings = { stableMs: 10_000, firstDelayMs: 1_000, maxDelayMs: 8_000, giveUpAfter: 5 };

describe('worker restart back-off (lib/restart_backoff)', () => {
  it('replaces a worker that had served at once, every time', () => {
    const b = new RestartBackoff(settings);
    for (let i = 0; i < 10; i++) assert.deepEqual(b.workerDied(60_000, 1), { action: 'restart', delayMs: 0 });
  });

  it('waits longer after each failure in a row, up to the maximum', () => {
    const b = new RestartBackoff(settings);
    const delays = Array.from({ length: 7 }, () => b.workerDied(undefined, 1)).map((d) => (d.action === 'restart' ? d.delayMs : -1));
    assert.deepEqual(delays, [0, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
  });

  it('never gives up while another worker serves', () => {
    const b = new RestartBackoff(settings);
    for (let i = 0; i < 50; i++) assert.equal(b.workerDied(undefined, 1).action, 'restart');
  });

  it('gives up after giveUpAfter failures in a row with no worker serving', () => {
    const b = new RestartBackoff(settings);
    const actions = Array.from({ length: 5 }, () => b.workerDied(500, 0).action);
    assert.deepEqual(actions, ['restart', 'restart', 'restart', 'restart', 'give_up']);
  });

  it('a stable worker starts the count again', () => {
    const b = new RestartBackoff(settings);
    for (let i = 0; i < 4; i++) b.workerDied(undefined, 0);
    b.workerStable();
    assert.deepEqual(b.workerDied(undefined, 0), { action: 'restart', delayMs: 0 });
  });
});
