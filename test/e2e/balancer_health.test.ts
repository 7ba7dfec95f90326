// A real HAProxy in front of two relays (num_proc = 2 each), as the recipe of
// docs/load_balancer.md sets it up: round robin, PROXY protocol, health from
// GET /health on each relay's http_listen, retries redispatched. /health must
// tell the balancer the truth at each moment: from the first moment of a TERM
// (the listener still takes connections for drain_grace), while a worker is
// hung (SIGSTOP: its heartbeat stops; it is replaced) and while workers die in
// a loop; 200 again once the relay serves. The balancer's checks open no SMTP
// session, and no client connection fails while a relay stops.

import assert from 'node:assert/strict';
import http from 'node:http';
import { Clamd, startClamd } from '../support/clamd';
import { HaproxyPool, startHaproxyPool } from '../support/haproxy';
import { childPids, eventually, isRunning } from '../support/processes';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';

const BALANCER = '127.0.0.2';
const GRACE_S = 3;
/** HAProxy's check: every 500 ms, down after 2 failures, up after 2 passes (1 s each way) */
const CHECK = { interMs: 500, fall: 2, rise: 2 };

function healthStatus(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    // (0: nothing answers, the manager is gone)
    req.on('error', () => resolve(0));
  });
}

async function metric(port: number, name: string): Promise<number> {
  const text = await new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** /health every 100 ms until stop() (each answer with its time, ms since start) */
function watchHealth(port: number): { samples: [number, number][]; stop(): Promise<void> } {
  const samples: [number, number][] = [];
  const t0 = Date.now();
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now() - t0;
      samples.push([at, await healthStatus(port)]);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return { samples, stop: async () => { running = false; await loop; } };
}

interface Member {
  relay: Relay;
  port: number;
  healthPort: number;
  cfg: string;
}

describe('a balancer checking /health (real HAProxy, two relays, num_proc = 2)', function () {
  this.timeout(180_000);
  let clamd: Clamd;
  let sink: Sink;
  let pool: HaproxyPool;
  const members: Member[] = [];

  const start = (port: number, cfg: string): Promise<Relay> => startRelay(['--config', cfg], port);

  before(async () => {
    sink = new Sink();
    await sink.start();
    clamd = await startClamd();
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const healthPort = await freePort();
      const cfg = writeEsetsCfg(esetsCfg(port, {
        serverPort: sink.port, clamdSocket: clamd.socket,
        smtp: { num_proc: 2, http_listen: `"127.0.0.1:${healthPort}"`, drain_grace: GRACE_S, proxy_hosts: `"${BALANCER}"` },
      }));
      members.push({ relay: await start(port, cfg), port, healthPort, cfg });
    }
    pool = await startHaproxyPool(members, BALANCER, CHECK);
    await upInPool([0, 1]);
  });

  after(async () => {
    await pool?.stop();
    for (const m of members) await m.relay.stop();
    await clamd?.stop();
    await sink?.stop();
  });

  async function upInPool(which: number[], ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    let states: string[] = [];
    while (Date.now() < deadline) {
      states = await pool.states();
      if (which.every((i) => states[i] === 'UP')) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`members ${which.join(', ')} not UP in HAProxy: ${states.join(', ')}\n${pool.output()}`);
  }

  async function downInPool(i: number, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ((await pool.states())[i]?.startsWith('DOWN')) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`member ${i} not DOWN in HAProxy: ${(await pool.states()).join(', ')}`);
  }

  /** One message through the balancer: '250' or what went wrong. */
  async function sendOne(tag: string): Promise<string> {
    let client: SmtpTestClient | undefined;
    try {
      client = await SmtpTestClient.connect(pool.port);
      const greeting = await client.read(20_000);
      if (greeting.code !== 220) return `greeting ${greeting.code}`;
      if ((await client.command('EHLO client.example')).code !== 250) return 'EHLO';
      const r = await client.send('a@example.com', ['b@example.org'], `Subject: ${tag}\r\nMessage-ID: <${tag}@lb.test>\r\n\r\nhello\r\n`);
      await client.command('QUIT').catch(() => undefined);
      return String(r.data?.code ?? `rcpt ${r.rcpts.map((x) => x.code).join(',')}`);
    } catch (err) {
      return (err as Error).message;
    } finally {
      client?.destroy();
    }
  }

  /** A new session every `everyMs` for `ms`; every outcome. */
  async function traffic(tag: string, ms: number, everyMs = 100): Promise<string[]> {
    const sessions: Promise<string>[] = [];
    const until = Date.now() + ms;
    for (let i = 0; Date.now() < until; i++) {
      sessions.push(sendOne(`${tag}-${i}`));
      await new Promise((r) => setTimeout(r, everyMs));
    }
    return Promise.all(sessions);
  }

  function assertAllDelivered(outcomes: string[], what: string): void {
    const failed = outcomes.filter((o) => o !== '250');
    assert.equal(failed.length, 0, `${what}: ${failed.length} of ${outcomes.length} failed: ${[...new Set(failed)].join(' | ')}`);
  }

  it('the checks open no SMTP session: the relays count no connection while only HAProxy checks them', async () => {
    // (the workers' counts reach the manager at most a second late: the start's own connection probes first)
    await new Promise((r) => setTimeout(r, 2_000));
    const before = await Promise.all(members.map((m) => metric(m.healthPort, 'esets_relay_connections_total')));
    const sessions = sink.messages.length;
    // 3 s: 6 checks of each relay
    await new Promise((r) => setTimeout(r, 3_000));
    const after = await Promise.all(members.map((m) => metric(m.healthPort, 'esets_relay_connections_total')));
    assert.deepEqual(after, before);
    assert.equal(sink.messages.length, sessions);
    assertAllDelivered(await traffic('baseline', 1_000), 'both relays serving');
  });

  it('TERM one relay during traffic: /health 503 at once, no new connection fails, the relay exits after the grace and drain', async () => {
    const a = members[0];
    const health = watchHealth(a.healthPort);
    await new Promise((r) => setTimeout(r, 500));
    const load = traffic('term', 4_000 + GRACE_S * 1000);
    await new Promise((r) => setTimeout(r, 1_000));
    const termAt = Date.now();
    a.relay.process.kill('SIGTERM');
    // (the signal reaches the manager's event loop with its next turn, not before a request already on its way)
    await new Promise((r) => setTimeout(r, 100));
    const firstAfter = await healthStatus(a.healthPort);
    const answeredIn = Date.now() - termAt;
    assert.equal(firstAfter, 503, 'the first /health after TERM');
    assert.ok(answeredIn < 1_000, `/health answered ${answeredIn} ms after TERM`);
    await downInPool(0, 5_000);
    const outcomes = await load;
    assertAllDelivered(outcomes, 'sessions through the balancer while relay 0 stopped');
    assert.equal(await a.relay.exited, 0);
    await health.stop();
    const sinceTerm = health.samples.filter(([at]) => at >= 500 + 1_000 + 100);
    assert.ok(sinceTerm.length > 5);
    // 503 while the manager lived, then nothing answers: never 200 again
    assert.ok(sinceTerm.every(([, s]) => s === 503 || s === 0), JSON.stringify(sinceTerm));
    const beforeTerm = health.samples.filter(([at]) => at < 1_400);
    assert.ok(beforeTerm.every(([, s]) => s === 200), JSON.stringify(beforeTerm));
    // back: the same relay started again serves, and the balancer takes it in again
    a.relay = await start(a.port, a.cfg);
    await upInPool([0, 1]);
    assert.equal(await healthStatus(a.healthPort), 200);
  });

  it('a hung worker (SIGSTOP): /health 503 within seconds, the worker replaced and logged, then 200; clients go elsewhere', async () => {
    const a = members[0];
    const [stopped, other] = childPids(a.relay.process.pid!);
    assert.ok(stopped && other, 'two workers');
    const health = watchHealth(a.healthPort);
    await new Promise((r) => setTimeout(r, 500));
    process.kill(stopped, 'SIGSTOP');
    const stoppedAt = Date.now();
    try {
      await downInPool(0, 10_000);
      const downAfter = Date.now() - stoppedAt;
      // while the hung worker would have taken every second connection of this relay
      assertAllDelivered(await traffic('hung', 2_000), 'sessions while relay 0 is DOWN');
      assert.ok(await eventually(() => !isRunning(stopped), 20_000), 'the hung worker was not replaced');
      assert.match(a.relay.output(), new RegExp(`worker ${stopped} has sent no heartbeat for \\d+ s \\(hung or stopped\\)`));
      const workersNow = (): number[] => childPids(a.relay.process.pid!);
      assert.ok(await eventually(() => workersNow().length === 2 && !workersNow().includes(stopped), 20_000), 'no replacement');
      await upInPool([0, 1]);
      await health.stop();
      const since = (ms: number): number[] => health.samples.filter(([at]) => at >= 500 + ms).map(([, s]) => s);
      // healthy for the first 2 s of silence (a worker may be busy a moment), failing from 3-4 s, healthy at the end
      assert.ok(since(0).slice(0, 10).every((s) => s === 200), JSON.stringify(health.samples));
      assert.ok(since(4_500).length && since(4_500)[0] === 503, JSON.stringify(health.samples));
      assert.equal(health.samples[health.samples.length - 1][1], 200);
      assert.ok(downAfter < 8_000, `HAProxy saw it down after ${downAfter} ms`);
    } finally {
      if (isRunning(stopped)) process.kill(stopped, 'SIGKILL');
      await health.stop();
    }
    assertAllDelivered(await traffic('after-hung', 1_000), 'both relays serving again');
  });

  it('workers dying in a loop: /health 503 while they do (even with a worker up between deaths), 200 once the deaths age out', async () => {
    const a = members[0];
    const health = watchHealth(a.healthPort);
    for (let i = 0; i < 3; i++) {
      const pids = childPids(a.relay.process.pid!);
      process.kill(pids[0], 'SIGKILL');
      // the replacement listens before the next death (the relay always has a worker up)
      assert.ok(await eventually(() => {
        const now = childPids(a.relay.process.pid!);
        return now.length === 2 && !now.includes(pids[0]);
      }, 15_000), `death ${i + 1}: no replacement`);
    }
    const loopAt = Date.now();
    assert.equal(await healthStatus(a.healthPort), 503);
    await downInPool(0, 5_000);
    assertAllDelivered(await traffic('loop', 1_000), 'sessions while relay 0 is DOWN for its crash loop');
    // the deaths age out of the 30 s window: healthy again, and the balancer takes it back
    const deadline = loopAt + 40_000;
    while (Date.now() < deadline && (await healthStatus(a.healthPort)) !== 200) await new Promise((r) => setTimeout(r, 250));
    assert.equal(await healthStatus(a.healthPort), 200);
    await upInPool([0, 1]);
    await health.stop();
    const statuses = health.samples.map(([, s]) => s);
    assert.ok(statuses.includes(503) && statuses.at(-1) === 200, JSON.stringify(health.samples));
  });

  it('TERM while a worker is hung: the hung worker is killed at its heartbeat bound, the relay stops, nothing is left', async () => {
    const a = members[1];
    const [stopped] = childPids(a.relay.process.pid!);
    process.kill(stopped, 'SIGSTOP');
    const termAt = Date.now();
    a.relay.process.kill('SIGTERM');
    try {
      // the grace (3 s), the heartbeat bound (8 s), then the other worker's drain of no session
      const code = await Promise.race([a.relay.exited, new Promise((r) => setTimeout(() => r('still running'), 30_000))]);
      assert.equal(code, 0, `after ${Date.now() - termAt} ms`);
      assert.ok(!isRunning(stopped), 'the hung worker was left behind');
      const killed = `worker ${stopped} has sent no heartbeat for \\d+ s \\(hung or stopped\\): it is killed\\n`;
      assert.match(a.relay.output(), new RegExp(killed));
    } finally {
      if (isRunning(stopped)) process.kill(stopped, 'SIGKILL');
    }
  });
});
