import assert from 'node:assert/strict';
import { ClamdHealth } from '../../src/lib/clamd_health';

describe('clamd health (which daemon to try first)', () => {
  it('keeps the configured order, puts a failed daemon last for the back-off, then takes it back', () => {
    const health = new ClamdHealth();
    const all = ['a:3310', 'b:3310', 'c:3310'];
    assert.deepEqual(health.order(all, 1000), all);
    health.markDown('a:3310', 1000, 30_000);
    assert.deepEqual(health.order(all, 2000), ['b:3310', 'c:3310', 'a:3310'], 'still tried when nothing else is left');
    assert.equal(health.isDown('a:3310', 2000), true);
    assert.deepEqual(health.order(all, 31_001), all, 'back in its place after the back-off');
    health.markDown('b:3310', 40_000, 30_000);
    health.markUp('b:3310');
    assert.deepEqual(health.order(all, 40_001), all, 'a verdict from it brings it back at once');
  });
});
