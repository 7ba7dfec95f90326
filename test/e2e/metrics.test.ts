// /metrics of the launcher's manager (num_proc = 2, http_listen) with two real
// clamd, a real sink that refuses some messages at the end of DATA: every
// family there (at 0 before any traffic), process figures summed over the
// processes, counts equal to what the server received and refused, the
// health gauges following a clamd and the server, the session gauges
// following held sessions, a stopped worker not holding a scrape, and worker
// kills (kill -9) under load costing at most the documented bound.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Clamd, EICAR, startClamd } from '../support/clamd';
import { startHarakaC } from '../support/haraka_c';
import { httpGet, seriesValue } from '../support/metrics';
import { childPids, eventually } from '../support/processes';
import { esetsCfg, freePort, PROJECT_DIR, Relay, startRelay, writeEsetsCfg } from '../support/relay';
import { Sink } from '../support/sink';
import { SmtpTestClient } from '../support/smtp_client';

/** every family /metrics has, with its type */
const FAMILIES: Record<string, string> = {
  esets_relay_connections_total: 'counter',
  esets_relay_messages_total: 'counter',
  esets_relay_message_size_bytes: 'histogram',
  esets_relay_server_replies_total: 'counter',
  esets_relay_scan_duration_seconds: 'histogram',
  esets_relay_scanner_failures_total: 'counter',
  esets_relay_server_failures_total: 'counter',
  esets_relay_config_reloads_total: 'counter',
  esets_relay_quarantine_events_total: 'counter',
  esets_relay_quarantine_failures_total: 'counter',
  esets_relay_clamd_up: 'gauge',
  esets_relay_server_up: 'gauge',
  esets_relay_healthy: 'gauge',
  esets_relay_build_info: 'gauge',
  esets_relay_client_sessions: 'gauge',
  esets_relay_server_sessions: 'gauge',
  esets_relay_workers_not_answering: 'gauge',
  process_cpu_user_seconds_total: 'counter',
  process_cpu_system_seconds_total: 'counter',
  process_cpu_seconds_total: 'counter',
  process_start_time_seconds: 'gauge',
  process_resident_memory_bytes: 'gauge',
  process_virtual_memory_bytes: 'gauge',
  process_heap_bytes: 'gauge',
  process_open_fds: 'gauge',
  process_max_fds: 'gauge',
  nodejs_eventloop_lag_seconds: 'gauge',
  nodejs_eventloop_lag_p99_seconds: 'gauge',
  nodejs_active_handles_total: 'gauge',
  nodejs_active_requests_total: 'gauge',
  nodejs_active_resources_total: 'gauge',
  nodejs_heap_size_total_bytes: 'gauge',
  nodejs_heap_size_used_bytes: 'gauge',
  nodejs_external_memory_bytes: 'gauge',
  nodejs_heap_space_size_used_bytes: 'gauge',
  nodejs_version_info: 'gauge',
  nodejs_gc_duration_seconds: 'histogram',
};

/** the counters' series known up front, each there at 0 before any traffic */
const ZERO_SERIES = [
  ...['action_av', 'action_av_infected', 'action_av_deleted', 'action_av_notscanned', 'action_as', 'action_as_spam', 'action_as_notscanned']
    .flatMap((by) => ['accept', 'defer', 'discard', 'reject'].map((action) => `esets_relay_messages_total{action="${action}",by="${by}"}`)),
  ...[['reject', 'message_format'], ['reject', 'message_size'], ['reject', 'haraka'], ['defer', 'haraka'], ['defer', 'policy_error'],
    ['defer', 'spool']].map(([action, by]) => `esets_relay_messages_total{action="${action}",by="${by}"}`),
  ...['2xx', '4xx', '5xx'].map((c) => `esets_relay_server_replies_total{class="${c}"}`),
  ...['clamd', 'spamd'].map((e) => `esets_relay_scanner_failures_total{engine="${e}"}`),
  ...['clamd', 'spamd'].map((e) => `esets_relay_scan_duration_seconds_count{engine="${e}"}`),
  ...['connect', 'session', 'outcome_unknown'].map((k) => `esets_relay_server_failures_total{kind="${k}"}`),
  ...['ok', 'failed'].map((r) => `esets_relay_config_reloads_total{result="${r}"}`),
  ...['stored', 'released', 'deleted', 'expired'].map((e) => `esets_relay_quarantine_events_total{event="${e}"}`),
  'esets_relay_quarantine_failures_total',
  'esets_relay_message_size_bytes_count',
];

const get = httpGet;
const value = seriesValue;

/** user + system CPU of one process, seconds (USER_HZ = 100) */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** when a process started, seconds since the epoch (/proc/PID/stat starttime after /proc/stat btime) */
function startedAt(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  const boot = Number(/^btime (\d+)/m.exec(fs.readFileSync('/proc/stat', 'utf8'))?.[1]);
  return boot + ticks / 100;
}

function rssBytes(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(kb?.[1]) * 1024;
}

function mail(subject: string, body: string): string {
  return `Subject: ${subject}\r\nMessage-ID: <${subject}@metrics.test>\r\n\r\n${body}\r\n`;
}

/** One message on a new connection: the end-of-data code (undefined: the connection was cut). */
async function sendOne(port: number, subject: string, body = 'hello'): Promise<number | undefined> {
  let client: SmtpTestClient | undefined;
  try {
    client = await SmtpTestClient.connect(port);
    await client.read();
    await client.command('EHLO client.example');
    const { data } = await client.send('a@example.com', ['b@example.org'], mail(subject, body));
    client.end();
    return data?.code;
  } catch {
    client?.destroy();
    return undefined;
  }
}

describe('/metrics (http_listen), num_proc = 2: families, counts against the server, faults and kills', function () {
  this.timeout(300_000);
  let clamdA: Clamd;
  let clamdB: Clamd;
  let sink: Sink;
  let relay: Relay;
  let httpPort: number;
  const scrape = async (): Promise<string> => {
    const r = await get(httpPort, '/metrics');
    assert.equal(r.status, 200, r.body);
    return r.body;
  };
  /** scrapes until `ok` holds (bounded); returns the last scrape */
  const scrapeUntil = async (ok: (text: string) => boolean, ms = 30_000): Promise<string> => {
    const deadline = Date.now() + ms;
    let text = await scrape();
    while (!ok(text) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      text = await scrape();
    }
    return text;
  };
  /** scrapes until `series` stays the same over two scrapes 1.5 s apart (the workers' events have landed) */
  const settled = async (series: string[]): Promise<string> => {
    let before = await scrape();
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 1_500));
      const now = await scrape();
      if (series.every((s) => value(now, s) === value(before, s))) return now;
      before = now;
    }
    return before;
  };

  /** a new sink (smtp-server once closed refuses XCLIENT): a message whose subject says so is refused at the end of DATA */
  const startSink = (port?: number): Promise<number> => {
    sink = new Sink({
      dataReply: (data) => (/Subject: refuse-/.test(data.toString('latin1')) ? { code: 554, text: '5.7.1 Refused here' } : undefined),
    });
    return sink.start(port);
  };

  before(async () => {
    [clamdA, clamdB] = await Promise.all([startClamd(), startClamd()]);
    const serverPort = await startSink();
    const port = await freePort();
    httpPort = await freePort();
    const cfg = writeEsetsCfg(esetsCfg(port, {
      serverPort, clamdSocket: `${clamdA.socket},${clamdB.socket}`, smtp: { num_proc: 2, http_listen: `"127.0.0.1:${httpPort}"` },
    }));
    relay = await startRelay(['--config', cfg], port);
  });
  after(async () => {
    if (process.env.SHOW_RELAY) console.log(relay?.output().slice(-20000));
    await relay?.stop();
    await sink?.stop();
    await Promise.all([clamdA?.stop(), clamdB?.stop()]);
  });

  // first: before any message
  it('has every family, each counter series known up front at 0, before any traffic', async () => {
    // (the workers still loading at first do not answer in time; the start's own probe connection closes)
    const text = await scrapeUntil((t) => value(t, `esets_relay_clamd_up{clamd="${clamdB.socket}"}`) === 1
      && value(t, `esets_relay_server_up{server="127.0.0.1:${sink.port}"}`) === 1 && value(t, 'esets_relay_workers_not_answering') === 0
      && value(t, 'esets_relay_client_sessions') === 0 && value(t, 'esets_relay_server_sessions') === 0);
    for (const [name, type] of Object.entries(FAMILIES)) assert.ok(text.includes(`\n# TYPE ${name} ${type}\n`), `${name} ${type} missing`);
    for (const series of ZERO_SERIES) assert.equal(value(text, series), 0, series);
    const pkg = JSON.parse(fs.readFileSync(`${PROJECT_DIR}/package.json`, 'utf8')) as { version: string };
    const haraka = JSON.parse(fs.readFileSync(require.resolve('Haraka/package.json'), 'utf8')) as { version: string };
    assert.equal(value(text, `esets_relay_build_info{version="${pkg.version}",haraka="${haraka.version}",node="${process.version}"}`), 1);
    assert.equal(value(text, `esets_relay_clamd_up{clamd="${clamdA.socket}"}`), 1);
    assert.equal(value(text, 'esets_relay_healthy'), 1);
    assert.equal(value(text, 'esets_relay_server_sessions'), 0);
    assert.equal(value(text, 'esets_relay_workers_not_answering'), 0);
    // one value per series (not one per process)
    assert.equal(text.split('\n').filter((l) => l.startsWith('process_cpu_seconds_total ')).length, 1);
  });

  it('sums the process figures over the manager and both workers', async () => {
    const pids = [relay.process.pid!, ...childPids(relay.process.pid!)];
    assert.equal(pids.length, 3, `processes: ${pids.join(' ')}`);
    const cpuBefore = pids.reduce((s, p) => s + cpuSeconds(p), 0);
    const rss = pids.reduce((s, p) => s + rssBytes(p), 0);
    const text = await scrape();
    const cpuAfter = pids.reduce((s, p) => s + cpuSeconds(p), 0);
    const cpu = value(text, 'process_cpu_seconds_total')!;
    // the kernel's figures are in ticks (10 ms), prom-client's in microseconds: a tick's slack per process
    assert.ok(cpu >= cpuBefore - 0.05 && cpu <= cpuAfter + 0.05, `cpu ${cpu} s, the processes' ${cpuBefore}-${cpuAfter} s`);
    const memory = value(text, 'process_resident_memory_bytes')!;
    assert.ok(memory > rss * 0.7 && memory < rss * 1.3, `rss ${memory}, the processes' ${rss}`);
    // the relay's start: the manager's (its workers start later, and are replaced)
    const start = value(text, 'process_start_time_seconds')!;
    assert.ok(Math.abs(start - startedAt(relay.process.pid!)) <= 2, `start ${start}, the manager's ${startedAt(relay.process.pid!)}`);
  });

  it('counts messages, sizes and the server\'s end-of-data answers (refusals as such) equal to what the server did', async () => {
    const watched = ['esets_relay_server_replies_total{class="2xx"}', 'esets_relay_server_replies_total{class="5xx"}',
      'esets_relay_message_size_bytes_count'];
    const before = await settled(watched);
    const received = sink.messages.length;
    const codes: (number | undefined)[] = [];
    const big = 'x'.repeat(76).concat('\r\n').repeat(1_300); // about 100 KB
    for (let i = 0; i < 15; i++) {
      const kind = i % 5;
      codes.push(await sendOne(relay.port, kind === 1 ? `refuse-${i}` : `m${i}`, kind === 2 ? EICAR : kind === 3 ? big : 'hello'));
    }
    assert.deepEqual(codes, codes.map((_, i) => [250, 554, 550, 250, 250][i % 5]));
    const sizes = 'esets_relay_message_size_bytes_count';
    const after = await scrapeUntil((t) => value(t, sizes)! - value(before, sizes)! >= 15);
    const grew = (series: string): number => value(after, series)! - value(before, series)!;
    assert.equal(grew('esets_relay_server_replies_total{class="2xx"}'), sink.messages.length - received);
    assert.equal(grew('esets_relay_server_replies_total{class="2xx"}'), 9);
    assert.equal(grew('esets_relay_server_replies_total{class="5xx"}'), 3);
    assert.equal(grew('esets_relay_server_replies_total{class="4xx"}'), 0);
    // the policy accepted the refused ones too: its decision and the server's answer are counted apart
    assert.equal(grew('esets_relay_messages_total{action="accept",by="action_as"}'), 12);
    assert.equal(grew('esets_relay_messages_total{action="reject",by="action_av_infected"}'), 3);
    assert.equal(grew('esets_relay_message_size_bytes_count'), 15);
    assert.equal(grew('esets_relay_message_size_bytes_bucket{le="262144"}') - grew('esets_relay_message_size_bytes_bucket{le="65536"}'), 3);
    assert.ok(grew('esets_relay_message_size_bytes_sum') > 3 * 100_000);
  });

  it('shows a clamd that stops answering, and the server that cannot be reached, as 0', async () => {
    const b = `esets_relay_clamd_up{clamd="${clamdB.socket}"}`;
    const a = `esets_relay_clamd_up{clamd="${clamdA.socket}"}`;
    const server = `esets_relay_server_up{server="127.0.0.1:${sink.port}"}`;
    clamdB.process.kill('SIGSTOP');
    try {
      const down = await scrapeUntil((t) => value(t, b) === 0);
      assert.equal(value(down, b), 0);
      assert.equal(value(down, a), 1);
      // one clamd answers: the relay serves
      assert.equal(value(down, 'esets_relay_healthy'), 1);
    } finally {
      clamdB.process.kill('SIGCONT');
    }
    assert.equal(value(await scrapeUntil((t) => value(t, b) === 1), b), 1);
    const port = sink.port;
    await sink.stop();
    try {
      const down = await scrapeUntil((t) => value(t, server) === 0);
      assert.equal(value(down, server), 0);
      assert.equal(value(down, 'esets_relay_healthy'), 0);
    } finally {
      await startSink(port);
    }
    const up = await scrapeUntil((t) => value(t, server) === 1 && value(t, 'esets_relay_healthy') === 1);
    assert.equal(value(up, 'esets_relay_healthy'), 1);
  });

  it('counts open client and server sessions while they are held, and 0 once they close', async () => {
    const clients = await Promise.all([0, 1, 2].map(async () => {
      const c = await SmtpTestClient.connect(relay.port);
      await c.read();
      await c.command('EHLO client.example');
      await c.command('MAIL FROM:<a@example.com>');
      return c;
    }));
    const held = await scrapeUntil((t) => value(t, 'esets_relay_client_sessions') === 3 && value(t, 'esets_relay_server_sessions') === 3);
    assert.equal(value(held, 'esets_relay_client_sessions'), 3);
    assert.equal(value(held, 'esets_relay_server_sessions'), 3);
    for (const c of clients) c.end();
    const closed = await scrapeUntil((t) => value(t, 'esets_relay_client_sessions') === 0 && value(t, 'esets_relay_server_sessions') === 0);
    assert.equal(value(closed, 'esets_relay_client_sessions'), 0);
    assert.equal(value(closed, 'esets_relay_server_sessions'), 0);
  });

  it('answers a scrape within its bound while a worker is stopped (SIGSTOP), with that worker\'s last figures', async () => {
    const [worker] = childPids(relay.process.pid!);
    const before = await scrape();
    process.kill(worker, 'SIGSTOP');
    try {
      const started = Date.now();
      const text = await scrape();
      const took = Date.now() - started;
      // the bound is 1 s; the rest is a busy machine's slack
      assert.ok(took < 6_000, `the scrape took ${took} ms`);
      assert.equal(value(text, 'esets_relay_workers_not_answering'), 1);
      const cpu = 'process_cpu_seconds_total';
      assert.ok(value(text, cpu)! >= value(before, cpu)!, 'the stopped worker\'s CPU left the sum');
    } finally {
      process.kill(worker, 'SIGCONT');
    }
    const again = await scrapeUntil((t) => value(t, 'esets_relay_workers_not_answering') === 0);
    assert.equal(value(again, 'esets_relay_workers_not_answering'), 0);
  });

  it('keeps a killed worker\'s CPU and GC counts in the sums: they never go back when a worker is replaced', async () => {
    const before = await scrape();
    const [victim] = childPids(relay.process.pid!);
    process.kill(victim, 'SIGKILL');
    assert.ok(await eventually(() => !childPids(relay.process.pid!).includes(victim), 10_000, 20));
    const counters = ['process_cpu_seconds_total', 'process_cpu_user_seconds_total', 'nodejs_gc_duration_seconds_count{kind="minor"}'];
    for (const series of counters) {
      const after = await scrapeUntil((t) => value(t, series) !== undefined);
      const [was, is] = [value(before, series)!, value(after, series)!];
      assert.ok(is >= was, `${series}: ${is} after, ${was} before`);
    }
    await eventually(() => childPids(relay.process.pid!).length === 2, 30_000, 50);
  });

  // last: it kills workers
  it('counts what the server received, short by at most the messages in progress on each killed worker (kill -9 under load)', async () => {
    const SENDERS = 4;
    const MESSAGES = 400;
    const KILLS = 3;
    const accepted = 'esets_relay_server_replies_total{class="2xx"}';
    const decided = 'esets_relay_messages_total{action="accept",by="action_as"}';
    const before = await settled([accepted, decided]);
    const cpuBefore = value(before, 'process_cpu_seconds_total')!;
    const received = sink.messages.length;
    let next = 0;
    let cut = 0;
    const senders = Array.from({ length: SENDERS }, async () => {
      while (next < MESSAGES) {
        const i = next++;
        if ((await sendOne(relay.port, `load-${i}`)) !== 250) cut++;
      }
    });
    const kills = (async () => {
      for (let k = 1; k <= KILLS; k++) {
        await eventually(() => next >= (k * MESSAGES) / (KILLS + 1), 120_000, 20);
        // both workers serving again before the next kill (the supervisor replaces a dead one)
        await eventually(() => childPids(relay.process.pid!).length === 2, 30_000, 50);
        const [victim] = childPids(relay.process.pid!);
        process.kill(victim, 'SIGKILL');
      }
    })();
    await Promise.all([...senders, kills]);
    const after = await settled([accepted, decided]);
    const atServer = sink.messages.length - received;
    const counted = value(after, accepted)! - value(before, accepted)!;
    const decidedCount = value(after, decided)! - value(before, decided)!;
    // the documented bound: per killed worker, the messages it had in progress (at most one per client session: SENDERS)
    const bound = KILLS * SENDERS;
    const seen = `server ${atServer}, counted ${counted} (policy ${decidedCount}), ${cut} cut`;
    assert.ok(atServer > MESSAGES / 2, seen);
    assert.ok(counted <= atServer && atServer - counted <= bound, seen);
    assert.ok(decidedCount <= atServer && atServer - decidedCount <= bound, seen);
    // the killed workers' CPU stays in the sum: the counter never goes back
    assert.ok(value(after, 'process_cpu_seconds_total')! >= cpuBefore, `cpu ${value(after, 'process_cpu_seconds_total')} < ${cpuBefore}`);
  });
});

describe('/metrics under haraka -c, one process (nodes = 0)', function () {
  this.timeout(120_000);

  it('has every family, counts a message against the server, its sessions, and the one process\'s CPU', async () => {
    const clamd = await startClamd();
    const sink = new Sink({
      dataReply: (data) => (/Subject: refuse-/.test(data.toString('latin1')) ? { code: 554, text: '5.7.1 Refused here' } : undefined),
    });
    const serverPort = await sink.start();
    const port = await freePort();
    const httpPort = await freePort();
    const relay = await startHarakaC({
      port,
      esetsCfg: ['[global]', `daemon_sock_path = "${clamd.socket}"`, '', '[smtp]', 'agent_enabled = yes', 'server_addr = "127.0.0.1"',
        `server_port = ${serverPort}`, `http_listen = "127.0.0.1:${httpPort}"`, ''].join('\n'),
    });
    try {
      const scrape = async (): Promise<string> => (await get(httpPort, '/metrics')).body;
      const until = async (ok: (t: string) => boolean): Promise<string> => {
        let text = await scrape();
        for (let i = 0; i < 120 && !ok(text); i++) {
          await new Promise((r) => setTimeout(r, 250));
          text = await scrape();
        }
        return text;
      };
      const first = await until((t) => value(t, 'esets_relay_client_sessions') === 0);
      for (const [name, type] of Object.entries(FAMILIES)) {
        assert.ok(first.includes(`\n# TYPE ${name} ${type}\n`), `${name} ${type} missing`);
      }
      for (const series of ZERO_SERIES) assert.equal(value(first, series), 0, series);
      assert.equal(await sendOne(port, 'hc-1'), 250);
      assert.equal(await sendOne(port, 'refuse-hc-2'), 554);
      const counted = await until((t) => value(t, 'esets_relay_message_size_bytes_count') === 2);
      assert.equal(value(counted, 'esets_relay_server_replies_total{class="2xx"}'), sink.messages.length);
      assert.equal(value(counted, 'esets_relay_server_replies_total{class="5xx"}'), 1);
      const held = await SmtpTestClient.connect(port);
      await held.read();
      const open = await until((t) => value(t, 'esets_relay_client_sessions') === 1 && value(t, 'esets_relay_server_sessions') === 1);
      assert.equal(value(open, 'esets_relay_client_sessions'), 1);
      assert.equal(value(open, 'esets_relay_server_sessions'), 1);
      held.end();
      const before = cpuSeconds(relay.process.pid!);
      const text = await scrape();
      const cpu = value(text, 'process_cpu_seconds_total')!;
      assert.ok(cpu >= before - 0.02 && cpu <= cpuSeconds(relay.process.pid!) + 0.02, `cpu ${cpu}, the process's ${before}`);
      assert.equal(value(text, 'esets_relay_workers_not_answering'), 0);
    } finally {
      await relay.stop('SIGKILL');
      await sink.stop();
      await clamd.stop();
    }
  });
});
