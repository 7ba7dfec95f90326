import assert from 'node:assert/strict';
import { healthAnswer, HealthInput } from '../../src/lib/health';
import { WorkerHealth } from '../../src/lib/worker_health';

const settings = { everyMs: 1_000, lateMs: 3_000, replaceMs: 8_000, startMs: 60_000, crashDeaths: 3, crashWindowMs: 30_000 };

/** two workers (ids 1, 2; pids 101, 102) listening at t=0 */
function twoServing(): WorkerHealth {
  const h = new WorkerHealth(settings);
  h.started(1, 101, 0);
  h.started(2, 102, 0);
  h.listening(1, 0);
  h.listening(2, 0);
  return h;
}

describe('worker heartbeats and crash loops (lib/worker_health)', () => {
  it('workers that beat every second are never late nor replaced', () => {
    const h = twoServing();
    for (let t = 1_000; t <= 60_000; t += 1_000) {
      h.beat(1, t);
      h.beat(2, t);
      assert.deepEqual(h.state(t).late, []);
      assert.deepEqual(h.toReplace(t), []);
    }
  });

  it('a silent serving worker is late from lateMs and to be replaced from replaceMs', () => {
    const h = twoServing();
    for (let t = 1_000; t <= 10_000; t += 1_000) h.beat(1, t);
    assert.deepEqual(h.state(2_999).late, []);
    assert.deepEqual(h.state(3_000).late.map((w) => w.pid), [102]);
    assert.deepEqual(h.toReplace(7_999), []);
    assert.deepEqual(h.toReplace(8_000).map((w) => w.pid), [102]);
  });

  it('a replaced worker is reported once, and its death counts toward a crash loop', () => {
    const h = twoServing();
    h.replaced(2);
    assert.ok(!h.toReplace(20_000).some((w) => w.pid === 102), 'reported again');
    assert.deepEqual(h.state(20_000).workers.map((w) => w.pid), [101]);
    h.exited(2, false, 20_000);
    assert.equal(h.state(20_000).recentDeaths, 1);
  });

  it('a worker loading its plugins (no heartbeat yet) is not late; with none startMs after its start it is replaced', () => {
    const h = new WorkerHealth(settings);
    h.started(1, 101, 0);
    assert.deepEqual(h.state(59_999).late, []);
    assert.deepEqual(h.toReplace(59_999), []);
    assert.deepEqual(h.state(59_999).workers, [{ pid: 101, serving: false, silentMs: 59_999 }]);
    assert.deepEqual(h.toReplace(60_000).map((w) => w.pid), [101]);
  });

  it('a starting worker that has begun to beat and falls silent (hung before it listens) is late, then replaced', () => {
    const h = new WorkerHealth(settings);
    h.started(1, 101, 0);
    h.beat(1, 1_000);
    assert.deepEqual(h.state(4_000).late.map((w) => w.pid), [101]);
    assert.deepEqual(h.toReplace(8_999), []);
    assert.deepEqual(h.toReplace(9_000).map((w) => w.pid), [101]);
  });

  it('a worker draining after TERM is no longer reported, but is still replaced when it hangs', () => {
    const h = twoServing();
    h.retired(1);
    h.beat(2, 9_000);
    assert.deepEqual(h.state(9_000).late, []);
    assert.deepEqual(h.toReplace(9_000).map((w) => w.pid), [101]);
  });

  it('three unplanned deaths within 30 s are a crash loop, which ends when they age out', () => {
    const h = twoServing();
    h.exited(1, false, 1_000);
    h.started(3, 103, 1_000);
    h.exited(3, false, 2_000);
    assert.equal(h.state(2_000).crashLoop, false);
    h.started(4, 104, 2_000);
    h.exited(4, false, 3_000);
    assert.equal(h.state(3_000).crashLoop, true);
    assert.equal(h.state(30_999).crashLoop, true);
    assert.equal(h.state(31_000).crashLoop, false, 'the first death aged out');
  });

  it('workers told to stop (TERM alone) and exits while the relay stops are no deaths', () => {
    const h = twoServing();
    h.retired(1);
    assert.deepEqual(h.state(10_000).late.map((w) => w.pid), [102], 'a draining worker is not watched');
    h.exited(1, false, 10_000);
    h.exited(2, true, 10_000);
    assert.equal(h.state(10_000).recentDeaths, 0);
  });
});

describe('/health answer (lib/health)', () => {
  const up = { ok: true };
  const base: HealthInput = { clamd: { 'c:1': up }, server: { address: 's:25', result: up }, stopping: false };

  it('200 when clamd and the server answer, the relay is not stopping and a worker serves, all beating', () => {
    const h = twoServing();
    const a = healthAnswer({ ...base, workers: h.state(500) });
    assert.equal(a.status, 200);
    assert.deepEqual(a.body.workers, { 101: 'up', 102: 'up' });
  });

  it('503 from the first moment of a stop, whatever else answers', () => {
    const a = healthAnswer({ ...base, stopping: true });
    assert.equal(a.status, 503);
    assert.deepEqual(a.body.failing, ['stopping (TERM): new connections belong elsewhere']);
  });

  it('503 naming a silent worker; 200 again once it beats', () => {
    const h = twoServing();
    h.beat(1, 4_000);
    const late = healthAnswer({ ...base, workers: h.state(4_000) });
    assert.equal(late.status, 503);
    assert.deepEqual(late.body.failing, ['worker 102 silent for 4 s']);
    assert.equal(late.body.workers?.['102'], 'silent 4 s');
    h.beat(2, 4_100);
    assert.equal(healthAnswer({ ...base, workers: h.state(4_100) }).status, 200);
  });

  it('503 during a crash loop even while a worker serves between deaths, and with no worker serving', () => {
    const h = twoServing();
    for (const [id, t] of [[1, 1_000], [2, 2_000]] as const) h.exited(id, false, t);
    assert.deepEqual(healthAnswer({ ...base, workers: h.state(2_000) }).body.failing, ['no worker serves']);
    h.started(3, 103, 2_000);
    h.listening(3, 2_500);
    h.exited(3, false, 3_000);
    h.started(4, 104, 3_000);
    h.listening(4, 3_500);
    const a = healthAnswer({ ...base, workers: h.state(3_500) });
    assert.equal(a.status, 503);
    assert.deepEqual(a.body.failing, ['workers die in a loop (3 in the last 30 s)']);
  });

  it('503 when no clamd answers or the server cannot be reached, each said', () => {
    const down = { ok: false, error: 'no PONG' };
    const a = healthAnswer({ clamd: { 'c:1': down, 'c:2': down }, server: { address: 's:25', result: { ok: false } }, stopping: false });
    assert.equal(a.status, 503);
    assert.deepEqual(a.body.failing, ['no clamd answers (c:1, c:2)', 'the mail server s:25 cannot be reached']);
    assert.equal(healthAnswer({ ...base, clamd: { 'c:1': down, 'c:2': up } }).status, 200);
  });
});
