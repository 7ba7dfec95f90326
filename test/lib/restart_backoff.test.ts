import assert from 'node:assert/strict';
import { RestartBackoff } from '../../src/lib/restart_backoff';

const settings = { stableMs: 10_000, firstDelayMs: 1_000, maxDelayMs: 8_000, giveUpAfter: 5 };

describe('worker restart back-off (lib/restart_backoff)', () => {
  it('replaces a worker that had served a while at once, every time', () => {
    const b = new RestartBackoff(settings);
    for (let i = 0; i < 10; i++) assert.deepEqual(b.workerDied(60_000, 1), { action: 'restart', delayMs: 0 });
  });

  it('waits longer after each death in a row while others serve, up to the maximum', () => {
    const b = new RestartBackoff(settings);
    const delays = Array.from({ length: 7 }, () => b.workerDied(undefined, 1)).map((d) => (d.action === 'restart' ? d.delayMs : -1));
    assert.deepEqual(delays, [0, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
  });

  it('never gives up while another worker serves', () => {
    const b = new RestartBackoff(settings);
    for (let i = 0; i < 50; i++) assert.equal(b.workerDied(undefined, 1).action, 'restart');
  });

  it('gives up after giveUpAfter workers in a row that died before listening, with no worker serving', () => {
    const b = new RestartBackoff(settings);
    const decisions = Array.from({ length: 5 }, () => b.workerDied(undefined, 0));
    assert.deepEqual(decisions.map((d) => d.action), ['restart', 'restart', 'restart', 'restart', 'give_up']);
  });

  it('never gives up over workers that had listened, however short-lived (killed, OOM): it only waits longer', () => {
    const b = new RestartBackoff(settings);
    const decisions = Array.from({ length: 20 }, () => b.workerDied(500, 1));
    assert.ok(decisions.every((d) => d.action === 'restart'));
    assert.deepEqual(decisions.at(-1), { action: 'restart', delayMs: 8_000 });
  });

  it('while no worker serves, waits a second at most: a longer wait would be an outage', () => {
    const b = new RestartBackoff(settings);
    const delays = Array.from({ length: 10 }, () => b.workerDied(500, 0)).map((d) => (d.action === 'restart' ? d.delayMs : -1));
    assert.deepEqual(delays, [0, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000]);
  });

  it('start failures while another worker serves do not count toward giving up', () => {
    const b = new RestartBackoff(settings);
    for (let i = 0; i < 4; i++) b.workerDied(undefined, 1);
    assert.equal(b.workerDied(undefined, 0).action, 'restart', 'gave up on failures counted while a worker served');
  });

  it('a worker that listens shows workers can start: the count of failed starts begins again', () => {
    const b = new RestartBackoff(settings);
    for (let i = 0; i < 4; i++) b.workerDied(undefined, 0);
    b.workerListening();
    assert.equal(b.workerDied(undefined, 0).action, 'restart');
  });

  it('a stable worker makes the next death a first one (no wait)', () => {
    const b = new RestartBackoff(settings);
    for (let i = 0; i < 4; i++) b.workerDied(2_000, 1);
    b.workerStable();
    assert.deepEqual(b.workerDied(2_000, 1), { action: 'restart', delayMs: 0 });
  });
});
