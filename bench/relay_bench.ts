// The relay side by side with what a user could put in the same place, in
// one run on one machine: (a) direct to the sink, (b) clamsmtpd, (c) plain
// Haraka with queue/smtp_forward and haraka-plugin-clamd, (d) this relay with
// action_av = scan, (e) this relay with action_as = scan too, (f) bare Haraka
// (queue/smtp_forward alone: the floor of any Haraka-based relay). All on
// 127.0.0.1, started and stopped here by PID; smtp-source is the load,
// smtp-sink the mail server, a nodemailer client measures latency.
// Run: npm run bench  (BENCH_QUICK=1 for a short smoke run). Prints Markdown.
//
// Old against new: BENCH_OLD_DIR=/path/to/another/checkout (built: npm ci && npm run build there)
// adds that checkout's launcher, with the same esets.cfg, as "relay (<commit>)", and the same with
// action_av_notscanned = accept, which turns off the early send of the relays that had one (it
// starts only when nothing but a clean message can be delivered). These and "relay" form the A/B
// group: the same message count, BENCH_AB_REPS runs each (5) of about BENCH_AB_SECONDS (3), their
// order rotated each repetition, interleaved with the other targets' runs.
// Other settings: BENCH_SECONDS (measured run length of the other targets, 2), BENCH_SIZES
// (e.g. "2 KB,2 MB": the rows to run), BENCH_JSON (a file for every run's figures).

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { Clamd, startClamd } from '../test/support/clamd';
import { canConnect } from '../test/support/processes';
import { esetsCfg, freePort, PROJECT_DIR, Relay, startRelay, writeEsetsCfg } from '../test/support/relay';
import { Spamd, startSpamd } from '../test/support/spamd';

const QUICK = process.env.BENCH_QUICK === '1';
const REPS = QUICK ? 1 : 3;
const ALL_SIZES = [{ label: '2 KB', bytes: 2048 }, { label: '100 KB', bytes: 100 * 1024 }, { label: '2 MB', bytes: 2 * 1024 * 1024 }];
const SIZES = process.env.BENCH_SIZES
  ? ALL_SIZES.filter((s) => process.env.BENCH_SIZES!.split(',').map((x) => x.trim()).includes(s.label))
  : ALL_SIZES;
/** another checkout of the relay, measured beside this one (see the top) */
const OLD_DIR = process.env.BENCH_OLD_DIR ? path.resolve(process.env.BENCH_OLD_DIR) : undefined;
const AB_REPS = Number(process.env.BENCH_AB_REPS) || (QUICK ? 1 : OLD_DIR ? 5 : REPS);
const SESSIONS = [1, 20];
const MODES: ('new' | 'reuse')[] = ['new', 'reuse'];

/** messages of the probe run that sizes each row's measured runs (and warms the target up) */
function probeCount(bytes: number, sessions: number): number {
  const base = bytes <= 4096 ? 30 : bytes <= 200 * 1024 ? 10 : 4;
  return Math.max(sessions > 1 ? base * 2 : base, sessions);
}

/** measured runs last about this long at the target's probed rate */
const RUN_SECONDS = Number(process.env.BENCH_SECONDS) || (QUICK ? 0.7 : 2);
/** the same for the A/B group (relay against the old checkout) */
const AB_SECONDS = Number(process.env.BENCH_AB_SECONDS) || (OLD_DIR ? 3 : RUN_SECONDS);

function messageCount(probedRate: number, bytes: number, sessions: number, seconds = RUN_SECONDS): number {
  return Math.min(Math.max(Math.round(probedRate * seconds), sessions, 4), probeCount(bytes, sessions) * 100);
}

interface Target {
  name: string;
  port: number;
  /** processes whose CPU and memory count for this target (not clamd/spamd, reported apart) */
  pids(): number[];
  /** measured against each other: same message count, more and longer runs, order rotated */
  ab?: boolean;
}

interface Run {
  target: string;
  size: string;
  sessions: number;
  mode: string;
  messages: number;
  received: number;
  seconds: number;
  /** msg/s between the sink's 10% and 90% marks (start-up and the last sessions' drain left out); NaN under 20 messages */
  steadyRate: number;
  cpuMsPerMsg: Record<string, number>;
  peakRssMb: number;
}

const children: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];

function spawnTracked(cmd: string, args: string[], opts: Parameters<typeof spawn>[2] = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: 'ignore', ...opts });
  children.push(child);
  return child;
}

async function stopAll(): Promise<void> {
  for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
}

function tmpdir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

async function waitPort(port: number, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

// ---- the sink: smtp-sink, counting what it receives ----

class CountingSink {
  port = 0;
  private output = '';
  /** when the counter moved: smtp-sink -c writes it at every end of data, session end and QUIT */
  readonly marks: { ms: number; count: number }[] = [];

  async start(): Promise<void> {
    this.port = await freePort();
    const child = spawnTracked('smtp-sink', ['-u', 'root', '-c', `127.0.0.1:${this.port}`, '1000'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    child.stdout!.on('data', (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-200);
      const count = this.received();
      if (!this.marks.length || this.marks[this.marks.length - 1].count !== count) this.marks.push({ ms: performance.now(), count });
    });
    await waitPort(this.port);
  }

  received(): number {
    const all = [...this.output.matchAll(/mesg=(\d+)/g)];
    return all.length ? Number(all[all.length - 1][1]) : 0;
  }

  /** msg/s between the 10% and the 90% of `messages` received since `before` (marks from index `from`) */
  steadyRate(from: number, before: number, messages: number): number {
    if (messages < 20) return NaN;
    const marks = this.marks.slice(from);
    const lo = marks.find((m) => m.count - before >= Math.ceil(messages * 0.1));
    const hi = marks.find((m) => m.count - before >= Math.floor(messages * 0.9));
    if (!lo || !hi || hi.ms <= lo.ms) return NaN;
    return ((hi.count - lo.count) * 1000) / (hi.ms - lo.ms);
  }
}

// ---- targets ----

async function clamsmtpd(clamd: Clamd, sinkPort: number): Promise<Target> {
  const dir = tmpdir('bench-clamsmtpd-');
  const port = await freePort();
  const conf = path.join(dir, 'clamsmtpd.conf');
  fs.writeFileSync(conf, [
    `OutAddress: 127.0.0.1:${sinkPort}`, `Listen: 127.0.0.1:${port}`, `ClamAddress: ${clamd.socket}`,
    `TempDirectory: ${dir}`, 'MaxConnections: 256', '',
  ].join('\n'));
  const child = spawnTracked('clamsmtpd', ['-d', '0', '-f', conf]);
  await waitPort(port);
  return { name: 'clamsmtpd', port, pids: () => [child.pid!] };
}

/** Haraka with haraka-plugin-clamd and queue/smtp_forward; without clamd: bare Haraka, the floor */
async function plainHaraka(clamd: Clamd, sinkPort: number, withClamd = true): Promise<Target> {
  const dir = tmpdir('bench-haraka-');
  const port = await freePort();
  const cfg = path.join(dir, 'config');
  fs.mkdirSync(cfg);
  fs.writeFileSync(path.join(cfg, 'plugins'), withClamd ? 'clamd\nqueue/smtp_forward\n' : 'queue/smtp_forward\n');
  fs.writeFileSync(path.join(cfg, 'smtp.ini'), `[main]\nlisten=127.0.0.1:${port}\nnodes=1\n`);
  fs.writeFileSync(
    path.join(cfg, 'smtp_forward.ini'),
    `host=127.0.0.1\nport=${sinkPort}\ncheck_recipient=true\n[example.org]\nhost=127.0.0.1\nport=${sinkPort}\n`,
  );
  fs.writeFileSync(path.join(cfg, 'clamd.ini'), `[main]\nclamd_socket=${clamd.socket}\nmax_size=104857600\n`);
  fs.copyFileSync(path.join(PROJECT_DIR, 'config', 'connection.ini'), path.join(cfg, 'connection.ini'));
  fs.writeFileSync(path.join(cfg, 'log.ini'), '[main]\nlevel=warn\n');
  fs.symlinkSync(path.join(PROJECT_DIR, 'node_modules'), path.join(dir, 'node_modules'));
  const child = spawnTracked(process.execPath, [path.join(PROJECT_DIR, 'node_modules', 'Haraka', 'bin', 'haraka'), '-c', dir]);
  await waitPort(port);
  return { name: withClamd ? 'plain Haraka' : 'bare Haraka', port, pids: () => [child.pid!, ...childPids(child.pid!)] };
}

/** The esets_smtp launcher of this checkout, or of `projectDir` (the old one), with this esets.cfg */
async function relay(
  name: string, clamd: Clamd, sinkPort: number, smtp: Record<string, string | number>,
  global: Record<string, string | number> = {}, projectDir = PROJECT_DIR, ab = false,
): Promise<Target & { relay: Relay }> {
  const port = await freePort();
  const r = await startRelay([
    '--config', writeEsetsCfg(esetsCfg(port, { serverPort: sinkPort, clamdSocket: clamd.socket, smtp, global })),
  ], port, {}, [], projectDir);
  cleanups.push(async () => { await r.stop(); });
  return { name, port, relay: r, ab, pids: () => [r.process.pid!, ...childPids(r.process.pid!)] };
}

function shortCommit(dir: string): string {
  return execFileSync('git', ['-C', dir, 'rev-parse', '--short=7', 'HEAD'], { encoding: 'utf8' }).trim();
}

// ---- /proc ----

function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function cpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime + stime + the reaped children's (spamd recycles its children), USER_HZ = 100
    return ((Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 1000) / 100;
  } catch {
    return 0;
  }
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

// ---- one measured run ----

async function run(
  target: Target, sink: CountingSink, scannerPids: () => Record<string, number[]>, bytes: number, label: string, sessions: number,
  mode: 'new' | 'reuse', messages: number,
): Promise<Run> {
  const pids = target.pids();
  const groups: Record<string, number[]> = { [target.name]: pids, ...scannerPids() };
  const cpuBefore = Object.fromEntries(Object.entries(groups).map(([k, ps]) => [k, ps.reduce((a, p) => a + cpuMs(p), 0)]));
  const receivedBefore = sink.received();
  const marksBefore = sink.marks.length;
  let peak = 0;
  const sampler = setInterval(() => { peak = Math.max(peak, pids.reduce((a, p) => a + rssMb(p), 0)); }, 50);
  const started = process.hrtime.bigint();
  const args = ['-s', String(sessions), '-m', String(messages), '-l', String(bytes), '-f', 'bench@example.com', '-t', 'user@example.org'];
  if (mode === 'reuse') args.unshift('-d');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('smtp-source', [...args, `127.0.0.1:${target.port}`], { stdio: 'ignore' });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`smtp-source exited ${code} against ${target.name}`))));
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  peak = Math.max(peak, pids.reduce((a, p) => a + rssMb(p), 0));
  await new Promise((r) => setTimeout(r, 100));
  const cpuMsPerMsg = Object.fromEntries(Object.entries(groups).map(([k, ps]) => [
    k, (ps.reduce((a, p) => a + cpuMs(p), 0) - cpuBefore[k]) / messages,
  ]));
  const steadyRate = sink.steadyRate(marksBefore, receivedBefore, messages);
  return {
    target: target.name, size: label, sessions, mode, messages, received: sink.received() - receivedBefore, seconds, steadyRate,
    cpuMsPerMsg, peakRssMb: peak,
  };
}

/** Per-message latency, one session, reused connection, EHLO + PIPELINING-aware client (nodemailer). */
async function latency(target: Target, bytes: number, count: number): Promise<{ p50: number; p99: number; errors: number }> {
  const line = 'The quarterly figures are attached as discussed in our meeting last week.\r\n';
  // a distinct Message-ID per message: clamd would not scan the same bytes twice (it caches verdicts)
  const headers = (n: number): string => 'From: Bench <bench@example.com>\r\nTo: User <user@example.org>\r\nSubject: Quarterly figures\r\n'
    + `Date: ${new Date().toUTCString()}\r\nMessage-ID: <latency-${Date.now()}-${n}@example.com>\r\n\r\n`;
  const text = line.repeat(Math.ceil(bytes / line.length));
  let errors = 0;
  // an error event (e.g. ECONNRESET from a target that closed) counts and opens a new connection:
  // without a listener it would end the whole benchmark
  const open = async (): Promise<SMTPConnection> => {
    const c = new SMTPConnection({ host: '127.0.0.1', port: target.port, ignoreTLS: true, name: 'bench.client', socketTimeout: 120_000 });
    c.on('error', (err: Error) => {
      errors++;
      process.stderr.write(`latency ${target.name}: ${err.message}\n`);
    });
    await new Promise<void>((resolve, reject) => c.connect((err?: Error) => (err ? reject(err) : resolve())));
    return c;
  };
  let conn = await open();
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = process.hrtime.bigint();
    const failed = await new Promise<boolean>((resolve) => {
      conn.send({ from: 'bench@example.com', to: ['user@example.org'] }, headers(i) + text, (err) => {
        if (err) {
          errors++;
          process.stderr.write(`latency ${target.name}: ${err.message}\n`);
        }
        resolve(Boolean(err));
      });
    });
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (failed) {
      conn.close();
      conn = await open();
    }
  }
  conn.quit();
  times.sort((a, b) => a - b);
  const pct = (p: number): number => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))];
  return { p50: pct(50), p99: pct(99), errors };
}

/**
 * clamd alone: INSTREAM of messages like smtp-source's, this size, one at a time: the limit of any
 * scanning relay at one session. Each message differs (as smtp-source's do, by Message-Id):
 * clamd caches the verdicts of contents it has seen, and the same bytes again would not be scanned.
 */
async function clamdAlone(clamd: Clamd, bytes: number, count: number): Promise<{ rate: number; cpuMs: number }> {
  const { clamdScan } = await import('../src/io/clamd_client');
  const message = (n: number): Buffer => {
    const lines: string[] = [
      'From: <bench@example.com>', 'To: <user@example.org>', `Date: ${new Date().toUTCString()}`,
      `Message-Id: <${n}.${Date.now()}@example.com>`, '',
    ];
    for (let i = 1, size = 0; size < bytes; i++) {
      const line = `${i}`.padEnd(78, 'X');
      lines.push(line);
      size += line.length + 2;
    }
    return Buffer.from(lines.join('\r\n'));
  };
  const bodies = Array.from({ length: count }, (_, n) => message(n));
  const cpuBefore = cpuMs(clamd.process.pid!);
  const t = process.hrtime.bigint();
  for (const body of bodies) {
    await clamdScan({ addresses: [clamd.socket], connectTimeoutMs: 2000, scanTimeoutMs: 60_000 }, (sink) => sink.end(body));
  }
  return { rate: count / (Number(process.hrtime.bigint() - t) / 1e9), cpuMs: (cpuMs(clamd.process.pid!) - cpuBefore) / count };
}

function median(values: number[]): number {
  const s = [...values].filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

function fixed(value: number, digits = 1): string {
  return Number.isNaN(value) ? '-' : value.toFixed(digits);
}

/** One 50 MB message through a relay: RSS growth over idle */
async function bigMessage(big: Target, sink: CountingSink): Promise<string> {
  await new Promise((r) => setTimeout(r, 500));
  const idle = big.pids().reduce((a, p) => a + rssMb(p), 0);
  let bigPeak = idle;
  const bigSampler = setInterval(() => { bigPeak = Math.max(bigPeak, big.pids().reduce((a, p) => a + rssMb(p), 0)); }, 50);
  const bigBefore = sink.received();
  const bigStarted = Date.now();
  const bigLatency = await latency(big, 50 * 1024 * 1024, 1);
  clearInterval(bigSampler);
  const received = sink.received() - bigBefore;
  const seconds = (Date.now() - bigStarted) / 1000;
  return `50 MB message through ${big.name}: ${bigLatency.errors === 0 && received === 1 ? 'answered 250 and delivered' : 'NOT delivered'} `
    + `in ${seconds.toFixed(1)} s; RSS idle ${idle.toFixed(0)} MB, peak ${bigPeak.toFixed(0)} MB, `
    + `growth ${(bigPeak - idle).toFixed(0)} MB.`;
}

async function main(): Promise<void> {
  const started = Date.now();
  const clamd = await startClamd();
  cleanups.push(() => clamd.stop());
  const spamd: Spamd = await startSpamd();
  cleanups.push(() => spamd.stop());
  const sink = new CountingSink();
  await sink.start();
  const scanners = (): Record<string, number[]> => ({
    clamd: [clamd.process.pid!], spamd: [spamd.process.pid!, ...childPids(spamd.process.pid!)],
  });
  const none = (): Record<string, number[]> => ({});

  const direct: Target = { name: 'direct', port: sink.port, pids: () => [] };
  const newCommit = shortCommit(PROJECT_DIR);
  const oldCommit = OLD_DIR ? shortCommit(OLD_DIR) : '';
  const OLD = `relay (${oldCommit})`;
  const OLD_NO_EARLY = `relay (${oldCommit}), no early send`;
  const mainRelay = await relay('relay', clamd, sink.port, { action_av: 'scan' }, {}, PROJECT_DIR, !!OLD_DIR);
  const oldRelays = OLD_DIR
    ? [
      await relay(OLD, clamd, sink.port, { action_av: 'scan' }, {}, OLD_DIR, true),
      // the early send starts only when nothing but a clean message can be delivered
      await relay(OLD_NO_EARLY, clamd, sink.port, { action_av: 'scan', action_av_notscanned: 'accept' }, {}, OLD_DIR, true),
    ]
    : [];
  const targets: Target[] = [
    direct,
    await clamsmtpd(clamd, sink.port),
    await plainHaraka(clamd, sink.port),
    await plainHaraka(clamd, sink.port, false),
    mainRelay,
    ...oldRelays,
    await relay('relay+spamd', clamd, sink.port, { action_av: 'scan', action_as: 'scan' }, { spamd_addr: `127.0.0.1:${spamd.port}` }),
  ];
  const abGroup = targets.filter((t) => t.ab);

  const runs: Run[] = [];
  const latencies = new Map<string, { p50: number; p99: number; errors: number }>();
  for (const size of SIZES) {
    for (const sessions of SESSIONS) {
      for (const mode of MODES) {
        // a probe per target (also its warm-up), then runs of about RUN_SECONDS each, interleaved;
        // the A/B group: one message count for all (their mean probed rate, AB_SECONDS), AB_REPS
        // runs each, the group's order rotated every repetition
        const counts = new Map<string, number>();
        const abRates: number[] = [];
        for (const target of targets) {
          const probe = await run(target, sink, none, size.bytes, size.label, sessions, mode, probeCount(size.bytes, sessions));
          counts.set(target.name, messageCount(probe.messages / probe.seconds, size.bytes, sessions));
          if (target.ab) abRates.push(probe.messages / probe.seconds);
        }
        if (abGroup.length) {
          const abCount = messageCount(abRates.reduce((a, b) => a + b, 0) / abRates.length, size.bytes, sessions, AB_SECONDS);
          for (const t of abGroup) counts.set(t.name, abCount);
        }
        for (let rep = 0; rep < Math.max(REPS, abGroup.length ? AB_REPS : 0); rep++) {
          const rotated = abGroup.map((_, i) => abGroup[(i + rep) % abGroup.length]);
          const order: Target[] = [];
          for (const target of targets) {
            if (target.ab) {
              if (target === abGroup[0] && rep < AB_REPS) order.push(...rotated);
            } else if (rep < REPS) {
              order.push(target);
            }
          }
          for (const target of order) {
            runs.push(await run(
              target, sink, target === direct ? none : scanners, size.bytes, size.label, sessions, mode, counts.get(target.name)!,
            ));
          }
        }
        process.stderr.write(`${size.label} ${sessions} ${mode} done (${Math.round((Date.now() - started) / 1000)} s)\n`);
      }
    }
    for (const target of targets) {
      latencies.set(`${target.name} ${size.label}`, await latency(target, size.bytes, size.bytes > 1e6 ? 10 : 50));
    }
  }

  // clamd's own rate for a 2 MB message, alone, same run
  const clamd2mb = await clamdAlone(clamd, 2 * 1024 * 1024, QUICK ? 5 : 20);

  // num_proc = 2 versus 1, 20 sessions, 2 KB, reused and new connections
  const relay2 = await relay('relay num_proc=2', clamd, sink.port, { action_av: 'scan', num_proc: 2 });
  const scale: string[] = [];
  for (const mode of MODES) {
    const one: number[] = [];
    const two: number[] = [];
    for (let rep = 0; rep < REPS; rep++) {
      const a = await run(mainRelay, sink, scanners, 2048, '2 KB', 20, mode, QUICK ? 200 : 600);
      const b = await run(relay2, sink, scanners, 2048, '2 KB', 20, mode, QUICK ? 200 : 600);
      one.push(a.messages / a.seconds);
      two.push(b.messages / b.seconds);
    }
    scale.push(`| 2 KB, 20 sessions, ${mode} connection | ${median(one).toFixed(0)} | ${median(two).toFixed(0)} `
      + `| ${(median(two) / median(one)).toFixed(2)}x |`);
  }

  // one 50 MB message through a fresh relay (and a fresh old one): RSS growth over idle
  const bigLines = [await bigMessage(await relay('the relay', clamd, sink.port, { action_av: 'scan' }), sink)];
  if (OLD_DIR) {
    bigLines.push(await bigMessage(
      await relay(`the old relay (${oldCommit})`, clamd, sink.port, { action_av: 'scan' }, {}, OLD_DIR), sink,
    ));
  }

  // ---- report ----
  const out: string[] = [];
  out.push(`Run of ${new Date().toISOString()}, relay ${newCommit}${OLD_DIR ? `, old relay ${oldCommit}` : ''}, `
    + `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, `
    + `${REPS} repetitions of about ${RUN_SECONDS} s (median)`
    + `${abGroup.length ? `, the A/B group (${abGroup.map((t) => t.name).join(', ')}) ${AB_REPS} of about ${AB_SECONDS} s` : ''}, `
    + `${Math.round((Date.now() - started) / 1000)} s in all.`);
  out.push('');
  out.push('| size | sessions | connection | target | msg/s | steady msg/s | MB/s | vs clamsmtpd | vs plain Haraka | p50 ms | p99 ms '
    + '| CPU ms/msg (target; clamd; spamd) | peak RSS MB | sent = received |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const size of SIZES) {
    for (const sessions of SESSIONS) {
      for (const mode of MODES) {
        const rowRuns = runs.filter((r) => r.size === size.label && r.sessions === sessions && r.mode === mode);
        const rate = (name: string): number => median(rowRuns.filter((r) => r.target === name).map((r) => r.messages / r.seconds));
        for (const target of targets) {
          const mine = rowRuns.filter((r) => r.target === target.name);
          const msgs = rate(target.name);
          const lat = latencies.get(`${target.name} ${size.label}`)!;
          const cpu = (k: string): string => (
            mine[0].cpuMsPerMsg[k] === undefined ? '-' : median(mine.map((r) => r.cpuMsPerMsg[k])).toFixed(2)
          );
          const equal = mine.every((r) => r.received === r.messages)
            ? 'yes'
            : `NO (${mine.map((r) => `${r.received}/${r.messages}`).join(', ')})`;
          const steady = median(mine.map((r) => r.steadyRate));
          out.push(`| ${size.label} | ${sessions} | ${mode} | ${target.name} | ${msgs.toFixed(1)} | ${fixed(steady)} `
            + `| ${((msgs * size.bytes) / 2 ** 20).toFixed(2)} `
            + `| ${target.name === 'direct' ? '' : `${(msgs / rate('clamsmtpd')).toFixed(2)}x`} `
            + `| ${target.name === 'direct' ? '' : `${(msgs / rate('plain Haraka')).toFixed(2)}x`} `
            + `| ${lat.p50.toFixed(1)} | ${lat.p99.toFixed(1)} `
            + `| ${target.name === 'direct' ? '-' : `${cpu(target.name)}; ${cpu('clamd')}; ${cpu('spamd')}`} `
            + `| ${target.name === 'direct' ? '-' : median(mine.map((r) => r.peakRssMb)).toFixed(0)} | ${equal} |`);
        }
      }
    }
  }
  if (OLD_DIR) {
    // old against new, row by row: medians; ranges are min-max over the runs
    out.push('');
    out.push(`Old (${oldCommit}) against new (${newCommit}): msg/s median of ${AB_REPS} runs (min-max), `
      + "steady = between the sink's 10% and 90% marks; ratio = new / old; "
      + `"no early send" = ${oldCommit} with action_av_notscanned = accept (the early send off, the same work for a clean message).`);
    out.push('');
    out.push(`| size | sessions | connection | new msg/s | new steady | ${oldCommit} msg/s | ${oldCommit} steady `
      + '| new / old | new / old steady '
      + `| ${oldCommit} no early send msg/s | steady | new / no early send | early send gain (old / no early) `
      + '| CPU ms/msg new; old; no early (relay) | clamd CPU ms/msg new; old; no early |');
    out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const size of SIZES) {
      for (const sessions of SESSIONS) {
        for (const mode of MODES) {
          const rowRuns = runs.filter((r) => r.size === size.label && r.sessions === sessions && r.mode === mode);
          const of = (name: string): Run[] => rowRuns.filter((r) => r.target === name);
          const rate = (name: string): number => median(of(name).map((r) => r.messages / r.seconds));
          const steady = (name: string): number => median(of(name).map((r) => r.steadyRate));
          const range = (name: string): string => {
            const v = of(name).map((r) => r.messages / r.seconds);
            return `${rate(name).toFixed(1)} (${Math.min(...v).toFixed(1)}-${Math.max(...v).toFixed(1)})`;
          };
          const cpu = (name: string, k: string): string => fixed(median(of(name).map((r) => r.cpuMsPerMsg[k])), 2);
          const ratio = (a: number, b: number): string => (Number.isNaN(a) || Number.isNaN(b) ? '-' : `${(a / b).toFixed(2)}x`);
          out.push(`| ${size.label} | ${sessions} | ${mode} | ${range('relay')} | ${fixed(steady('relay'))} `
            + `| ${range(OLD)} | ${fixed(steady(OLD))} `
            + `| ${ratio(rate('relay'), rate(OLD))} | ${ratio(steady('relay'), steady(OLD))} `
            + `| ${range(OLD_NO_EARLY)} | ${fixed(steady(OLD_NO_EARLY))} `
            + `| ${ratio(rate('relay'), rate(OLD_NO_EARLY))} | ${ratio(rate(OLD), rate(OLD_NO_EARLY))} `
            + `| ${cpu('relay', 'relay')}; ${cpu(OLD, OLD)}; ${cpu(OLD_NO_EARLY, OLD_NO_EARLY)} `
            + `| ${cpu('relay', 'clamd')}; ${cpu(OLD, 'clamd')}; ${cpu(OLD_NO_EARLY, 'clamd')} |`);
        }
      }
    }
  }
  out.push('');
  out.push(`clamd alone, 2 MB INSTREAM of distinct messages, one at a time: ${clamd2mb.rate.toFixed(1)} scans/s, `
    + `${clamd2mb.cpuMs.toFixed(1)} ms of clamd CPU per scan (the limit of a scanning relay at one session).`);
  out.push('');
  out.push('| num_proc speed-up | num_proc = 1 msg/s | num_proc = 2 msg/s | speed-up |');
  out.push('|---|---|---|---|');
  out.push(...scale);
  out.push('');
  for (const line of bigLines) out.push(line, '');
  process.stdout.write(`${out.join('\n')}\n`);
  // every run, for a closer look (BENCH_JSON=file)
  if (process.env.BENCH_JSON) {
    fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify({ runs, latencies: Object.fromEntries(latencies) }, null, 1));
  }
}

main()
  .then(stopAll, async (err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    await stopAll();
    process.exitCode = 1;
  });
