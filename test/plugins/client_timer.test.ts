// ClientTimer (src/session/client_timer): the client's deadlines count only the
// client's own time, and a passed deadline is acted on only in the client's turn.

import assert from 'node:assert/strict';
import type { Overdue } from '../../src/lib/client_deadline';
import { ClientTimer } from '../../src/session/client_timer';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function timer(turn = (): boolean => true): { t: ClientTimer; cuts: Overdue[] } {
  const socket = { timeout: 0, setTimeout(ms: number) { this.timeout = ms; } };
  const t = new ClientTimer(socket, () => false);
  const cuts: Overdue[] = [];
  t.set(1);
  t.enforce(1000, 0, turn, (o) => cuts.push(o));
  return { t, cuts };
}

describe('ClientTimer deadlines (session/client_timer)', () => {
  it('a request past timeout_client + bytes/client_min_rate is cut; progress starts a new one', async () => {
    const { t, cuts } = timer();
    t.received(1);
    await sleep(300);
    t.progress();
    t.received(1);
    await sleep(300);
    assert.deepEqual(cuts, []);
    await sleep(1_200);
    assert.deepEqual(cuts, ['request']);
    t.stop();
  });

  it('bytes received extend the request deadline', async () => {
    const { t, cuts } = timer();
    t.received(1000); // 1 s more than timeout_client
    await sleep(1_200);
    assert.deepEqual(cuts, []);
    await sleep(1_300);
    assert.deepEqual(cuts, ['request']);
    t.stop();
  });

  it("the relay's waits are not the client's time", async () => {
    const { t, cuts } = timer();
    t.received(1);
    await t.during(() => sleep(1_500));
    assert.deepEqual(cuts, []);
    const spent = t.time();
    assert.ok(spent.requestMs < 500, `${spent.requestMs} ms counted`);
    t.stop();
  });

  it('while the client waits for a reply, the cut waits for its turn', async () => {
    let turn = false;
    const { t, cuts } = timer(() => turn);
    t.received(1);
    await sleep(1_500);
    assert.deepEqual(cuts, []);
    turn = true;
    await sleep(1_000);
    assert.deepEqual(cuts, ['request']);
    t.stop();
  });

  it('a silent client (no byte of its request) is left to the inactivity timeout', async () => {
    const { t, cuts } = timer();
    await sleep(1_500);
    assert.deepEqual(cuts, []);
    t.stop();
  });

  it('stuck input: cut after timeout_client of it, even with no request deadline', async () => {
    const socket = { timeout: 0, setTimeout(ms: number) { this.timeout = ms; } };
    const t = new ClientTimer(socket, () => false);
    const cuts: Overdue[] = [];
    t.set(0.3);
    t.enforce(0, 0, () => true, (o) => cuts.push(o));
    t.stall(true);
    await sleep(1_000);
    assert.deepEqual(cuts, ['stalled']);
    t.stop();
  });

  it('timeout_session counts the client time of every request', async () => {
    const socket = { timeout: 0, setTimeout(ms: number) { this.timeout = ms; } };
    const t = new ClientTimer(socket, () => false);
    const cuts: Overdue[] = [];
    t.set(10);
    t.enforce(0, 1.2, () => true, (o) => cuts.push(o));
    // 3 x 200 ms of the client's (600 ms), 3 x 300 ms of the relay's (not counted)
    for (let i = 0; i < 3; i++) {
      await sleep(200);
      t.progress();
      await t.during(() => sleep(300));
    }
    assert.deepEqual(cuts, []);
    await sleep(1_500);
    assert.deepEqual(cuts, ['session']);
    t.stop();
  });
});
