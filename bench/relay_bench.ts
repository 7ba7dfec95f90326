// The relay side by side with what a user could put in the same place, in
// one run on one machine: (a) direct to the sink, (b) clamsmtpd, (c) plain
// Haraka with queue/smtp_forward and haraka-plugin-clamd, (d) this relay with
// action_av = scan, (e) this relay with action_as = scan too. All on
// 127.0.0.1, started and stopped here by PID; smtp-source is the load,
// smtp-sink the mail server, a nodemailer client measures latency.
// Run: npm run bench  (BENCH_QUICK=1 for a short smoke run). Prints Markdown.

import { ChildProcess, spawn } from 'node:child_process';
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
const SIZES = [{ label: '2 KB', bytes: 2048 }, { label: '100 KB', bytes: 100 * 1024 }, { label: '2 MB', bytes: 2 * 1024 * 1024 }];
const SESSIONS = [1, 20];
const MODES: ('new' | 'reuse')[] = ['new', 'reuse'];

/** messages of the probe run that sizes each row's measured runs (and warms the target up) */
function probeCount(bytes: number, sessions: number): number {
  const base = bytes <= 4096 ? 30 : bytes <= 200 * 1024 ? 10 : 4;
  return Math.max(sessions > 1 ? base * 2 : base, sessions);
}

/** measured runs last about this long at the target's probed rate */
const RUN_SECONDS = QUICK ? 0.7 : 2;

function messageCount(probedRate: number, bytes: number, sessions: number): number {
  return Math.min(Math.max(Math.round(probedRate * RUN_SECONDS), sessions, 4), probeCount(bytes, sessions) * 100);
}

interface Target {
  name: string;
  port: number;
  /** processes whose CPU and memory count for this target (not clamd/spamd, reported apart) */
  pids(): number[];
}

interface Run {
  target: string;
  size: string;
  sessions: number;
  mode: string;
  messages: number;
  received: number;
  seconds: number;
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

  async start(): Promise<void> {
    this.port = await freePort();
    const child = spawnTracked('smtp-sink', ['-u', 'root', '-c', `127.0.0.1:${this.port}`, '1000'], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout!.on('data', (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-200);
    });
    await waitPort(this.port);
  }

  received(): number {
    const all = [...this.output.matchAll(/mesg=(\d+)/g)];
    return all.length ? Number(all[all.length - 1][1]) : 0;
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

async function plainHaraka(clamd: Clamd, sinkPort: number): Promise<Target> {
  const dir = tmpdir('bench-haraka-');
  const port = await freePort();
  const cfg = path.join(dir, 'config');
  fs.mkdirSync(cfg);
  fs.writeFileSync(path.join(cfg, 'plugins'), 'clamd\nqueue/smtp_forward\n');
  fs.writeFileSync(path.join(cfg, 'smtp.ini'), `[main]\nlisten=127.0.0.1:${port}\nnodes=1\n`);
  fs.writeFileSync(path.join(cfg, 'smtp_forward.ini'), `host=127.0.0.1\nport=${sinkPort}\ncheck_recipient=true\n[example.org]\nhost=127.0.0.1\nport=${sinkPort}\n`);
  fs.writeFileSync(path.join(cfg, 'clamd.ini'), `[main]\nclamd_socket=${clamd.socket}\nmax_size=104857600\n`);
  fs.copyFileSync(path.join(PROJECT_DIR, 'config', 'connection.ini'), path.join(cfg, 'connection.ini'));
  fs.writeFileSync(path.join(cfg, 'log.ini'), '[main]\nlevel=warn\n');
  fs.symlinkSync(path.join(PROJECT_DIR, 'node_modules'), path.join(dir, 'node_modules'));
  const child = spawnTracked(process.execPath, [path.join(PROJECT_DIR, 'node_modules', 'Haraka', 'bin', 'haraka'), '-c', dir]);
  await waitPort(port);
  return { name: 'plain Haraka', port, pids: () => [child.pid!, ...childPids(child.pid!)] };
}

async function relay(name: string, clamd: Clamd, sinkPort: number, smtp: Record<string, string | number>, global: Record<string, string | number> = {}): Promise<Target & { relay: Relay }> {
  const port = await freePort();
  const r = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: sinkPort, clamdSocket: clamd.socket, smtp, global }))], port);
  cleanups.push(async () => { await r.stop(); });
  return { name, port, relay: r, pids: () => [r.process.pid!, ...childPids(r.process.pid!)] };
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

async function run(target: Target, sink: CountingSink, scannerPids: () => Record<string, number[]>, bytes: number, label: string, sessions: number, mode: 'new' | 'reuse', messages: number): Promise<Run> {
  const pids = target.pids();
  const groups: Record<string, number[]> = { [target.name]: pids, ...scannerPids() };
  const cpuBefore = Object.fromEntries(Object.entries(groups).map(([k, ps]) => [k, ps.reduce((a, p) => a + cpuMs(p), 0)]));
  const receivedBefore = sink.received();
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
  const cpuMsPerMsg = Object.fromEntries(Object.entries(groups).map(([k, ps]) => [k, (ps.reduce((a, p) => a + cpuMs(p), 0) - cpuBefore[k]) / messages]));
  return { target: target.name, size: label, sessions, mode, messages, received: sink.received() - receivedBefore, seconds, cpuMsPerMsg, peakRssMb: peak };
}

/** Per-message latency, one session, reused connection, EHLO + PIPELINING-aware client (nodemailer). */
async function latency(target: Target, bytes: number, count: number): Promise<{ p50: number; p99: number; errors: number }> {
  const line = 'The quarterly figures are attached as discussed in our meeting last week.\r\n';
  // a distinct Message-ID per message: clamd would not scan the same bytes twice (it caches verdicts)
  const headers = (n: number): string => `From: Bench <bench@example.com>\r\nTo: User <user@example.org>\r\nSubject: Quarterly figures\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <latency-${Date.now()}-${n}@example.com>\r\n\r\n`;
  const text = line.repeat(Math.ceil(bytes / line.length));
  const conn = new SMTPConnection({ host: '127.0.0.1', port: target.port, ignoreTLS: true, name: 'bench.client', socketTimeout: 120_000 });
  await new Promise<void>((resolve, reject) => conn.connect((err?: Error) => (err ? reject(err) : resolve())));
  const times: number[] = [];
  let errors = 0;
  for (let i = 0; i < count; i++) {
    const t = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      conn.send({ from: 'bench@example.com', to: ['user@example.org'] }, headers(i) + text, (err) => {
        if (err) {
          errors++;
          process.stderr.write(`latency ${target.name}: ${err.message}\n`);
        }
        resolve();
      });
    });
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
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
    const lines: string[] = ['From: <bench@example.com>', 'To: <user@example.org>', `Date: ${new Date().toUTCString()}`, `Message-Id: <${n}.${Date.now()}@example.com>`, ''];
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
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const started = Date.now();
  const clamd = await startClamd();
  cleanups.push(() => clamd.stop());
  const spamd: Spamd = await startSpamd();
  cleanups.push(() => spamd.stop());
  const sink = new CountingSink();
  await sink.start();
  const scanners = (): Record<string, number[]> => ({ clamd: [clamd.process.pid!], spamd: [spamd.process.pid!, ...childPids(spamd.process.pid!)] });
  const none = (): Record<string, number[]> => ({});

  const direct: Target = { name: 'direct', port: sink.port, pids: () => [] };
  const targets: Target[] = [
    direct,
    await clamsmtpd(clamd, sink.port),
    await plainHaraka(clamd, sink.port),
    await relay('relay', clamd, sink.port, { action_av: 'scan' }),
    await relay('relay+spamd', clamd, sink.port, { action_av: 'scan', action_as: 'scan' }, { spamd_addr: `127.0.0.1:${spamd.port}` }),
  ];

  const runs: Run[] = [];
  const latencies = new Map<string, { p50: number; p99: number; errors: number }>();
  for (const size of SIZES) {
    for (const sessions of SESSIONS) {
      for (const mode of MODES) {
        // a probe per target (also its warm-up), then runs of about RUN_SECONDS each, interleaved
        const counts = new Map<string, number>();
        for (const target of targets) {
          const probe = await run(target, sink, none, size.bytes, size.label, sessions, mode, probeCount(size.bytes, sessions));
          counts.set(target.name, messageCount(probe.messages / probe.seconds, size.bytes, sessions));
        }
        for (let rep = 0; rep < REPS; rep++) {
          for (const target of targets) {
            runs.push(await run(target, sink, target === direct ? none : scanners, size.bytes, size.label, sessions, mode, counts.get(target.name)!));
          }
        }
        process.stderr.write(`${size.label} ${sessions} ${mode} done (${Math.round((Date.now() - started) / 1000)} s)\n`);
      }
    }
    for (const target of targets) latencies.set(`${target.name} ${size.label}`, await latency(target, size.bytes, size.bytes > 1e6 ? 10 : 50));
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
      const a = await run(targets[3], sink, scanners, 2048, '2 KB', 20, mode, QUICK ? 200 : 600);
      const b = await run(relay2, sink, scanners, 2048, '2 KB', 20, mode, QUICK ? 200 : 600);
      one.push(a.messages / a.seconds);
      two.push(b.messages / b.seconds);
    }
    scale.push(`| 2 KB, 20 sessions, ${mode} connection | ${median(one).toFixed(0)} | ${median(two).toFixed(0)} | ${(median(two) / median(one)).toFixed(2)}x |`);
  }

  // one 50 MB message through the relay: RSS growth over idle
  const big = await relay('relay 50 MB', clamd, sink.port, { action_av: 'scan' });
  await new Promise((r) => setTimeout(r, 500));
  const idle = big.pids().reduce((a, p) => a + rssMb(p), 0);
  let bigPeak = idle;
  const bigSampler = setInterval(() => { bigPeak = Math.max(bigPeak, big.pids().reduce((a, p) => a + rssMb(p), 0)); }, 50);
  const bigBefore = sink.received();
  const bigStarted = Date.now();
  const bigLatency = await latency(big, 50 * 1024 * 1024, 1);
  clearInterval(bigSampler);
  const bigRun = { received: sink.received() - bigBefore, seconds: (Date.now() - bigStarted) / 1000, peakRssMb: bigPeak, accepted: bigLatency.errors === 0 };

  // ---- report ----
  const out: string[] = [];
  out.push(`Run of ${new Date().toISOString()}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${REPS} repetitions (median), ${Math.round((Date.now() - started) / 1000)} s in all.`);
  out.push('');
  out.push('| size | sessions | connection | target | msg/s | MB/s | vs clamsmtpd | vs plain Haraka | p50 ms | p99 ms | CPU ms/msg (target; clamd; spamd) | peak RSS MB | sent = received |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const size of SIZES) {
    for (const sessions of SESSIONS) {
      for (const mode of MODES) {
        const rowRuns = runs.filter((r) => r.size === size.label && r.sessions === sessions && r.mode === mode);
        const rate = (name: string): number => median(rowRuns.filter((r) => r.target === name).map((r) => r.messages / r.seconds));
        for (const target of targets) {
          const mine = rowRuns.filter((r) => r.target === target.name);
          const msgs = rate(target.name);
          const lat = latencies.get(`${target.name} ${size.label}`)!;
          const cpu = (k: string): string => (mine[0].cpuMsPerMsg[k] === undefined ? '-' : median(mine.map((r) => r.cpuMsPerMsg[k])).toFixed(2));
          const equal = mine.every((r) => r.received === r.messages) ? 'yes' : `NO (${mine.map((r) => `${r.received}/${r.messages}`).join(', ')})`;
          out.push(`| ${size.label} | ${sessions} | ${mode} | ${target.name} | ${msgs.toFixed(1)} | ${((msgs * size.bytes) / 2 ** 20).toFixed(2)} | ${target.name === 'direct' ? '' : `${(msgs / rate('clamsmtpd')).toFixed(2)}x`} | ${target.name === 'direct' ? '' : `${(msgs / rate('plain Haraka')).toFixed(2)}x`} | ${lat.p50.toFixed(1)} | ${lat.p99.toFixed(1)} | ${target.name === 'direct' ? '-' : `${cpu(target.name)}; ${cpu('clamd')}; ${cpu('spamd')}`} | ${target.name === 'direct' ? '-' : median(mine.map((r) => r.peakRssMb)).toFixed(0)} | ${equal} |`);
        }
      }
    }
  }
  out.push('');
  out.push(`clamd alone, 2 MB INSTREAM of distinct messages, one at a time: ${clamd2mb.rate.toFixed(1)} scans/s, ${clamd2mb.cpuMs.toFixed(1)} ms of clamd CPU per scan (the limit of a scanning relay at one session).`);
  out.push('');
  out.push('| num_proc speed-up | num_proc = 1 msg/s | num_proc = 2 msg/s | speed-up |');
  out.push('|---|---|---|---|');
  out.push(...scale);
  out.push('');
  out.push(`50 MB message through the relay: ${bigRun.accepted && bigRun.received === 1 ? 'answered 250 and delivered' : 'NOT delivered'} in ${bigRun.seconds.toFixed(1)} s; relay RSS idle ${idle.toFixed(0)} MB, peak ${bigRun.peakRssMb.toFixed(0)} MB, growth ${(bigRun.peakRssMb - idle).toFixed(0)} MB.`);
  process.stdout.write(`${out.join('\n')}\n`);
}

main()
  .then(stopAll, async (err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    await stopAll();
    process.exitCode = 1;
  });
