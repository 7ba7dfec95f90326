import assert from 'node:assert/strict';
import { ConnectionCounts } from '../../src/lib/connection_counts';

describe('connection caps (max_connections, max_connections_per_ip)', () => {
  it('admits up to each cap and counts released connections out', () => {
    const counts = new ConnectionCounts();
    assert.equal(counts.admit('192.0.2.1', 3, 2).admitted, true);
    assert.equal(counts.admit('192.0.2.1', 3, 2).admitted, true);
    const third = counts.admit('192.0.2.1', 3, 2);
    assert.ok(!third.admitted && /max_connections_per_ip = 2/.test(third.reason));
    assert.equal(counts.admit('192.0.2.2', 3, 2).admitted, true);
    const full = counts.admit('192.0.2.3', 3, 2);
    assert.ok(!full.admitted && /max_connections = 3/.test(full.reason));
    counts.release('192.0.2.1');
    assert.equal(counts.admit('192.0.2.3', 3, 2).admitted, true);
    assert.equal(counts.open, 3);
  });

  it('has no cap at 0', () => {
    const counts = new ConnectionCounts();
    for (let i = 0; i < 1000; i++) assert.equal(counts.admit('192.0.2.1', 0, 0).admitted, true);
  });
});
