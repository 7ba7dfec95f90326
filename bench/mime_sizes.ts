// Time and memory per message by size and part count: messages of 2 KB,
// 100 KB, 2 MB and 20 MB, each as 1 and as 50 base64 attachments, sent one
// after another through the relay (launcher, num_proc 1, real clamd, Postfix's
// smtp-sink). Per row: the time from the final dot to the reply (what the
// client waits for the scan), the whole transaction, the worker's CPU per
// message, and its peak RSS while the row ran (sampled every 10 ms).
// Run: npm run build && node dist/bench/mime_sizes.js
//   BENCH_DIR=/other/checkout   the relay to run (built), default this one
//   BENCH_ROUNDS (default 10; 20 MB rows: a third of it, at least 3)

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { startClamd } from '../test/support/clamd';
import { childPids } from '../test/support/processes';
import { esetsCfg, freePort, PROJECT_DIR, startRelay, writeEsetsCfg } from '../test/support/relay';
import { SmtpTestClient } from '../test/support/smtp_client';

function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** A multipart message of about `bytes` bytes in `parts` base64 attachments of random data. */
function messageOf(bytes: number, parts: number): string {
  const perPart = Math.max(1, Math.floor((bytes * 3) / 4 / parts));
  const lines = ['From: a@example.com', 'To: b@example.org', 'Subject: bench', 'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="=_bench"', ''];
  for (let i = 0; i < parts; i++) {
    const b64 = crypto.randomBytes(perPart).toString('base64');
    lines.push('--=_bench', `Content-Type: application/octet-stream; name="f${i}.bin"`, 'Content-Transfer-Encoding: base64', '');
    for (let at = 0; at < b64.length; at += 76) lines.push(b64.slice(at, at + 76));
  }
  lines.push('--=_bench--', '');
  return lines.join('\r\n');
}

const SIZES: [string, number][] = [['2 KB', 2048], ['100 KB', 100 * 1024], ['2 MB', 2 * 1024 * 1024], ['20 MB', 20 * 1024 * 1024]];

async function main(): Promise<void> {
  const rounds = Number(process.env.BENCH_ROUNDS) || 10;
  const clamd = await startClamd();
  const sinkPort = await freePort();
  const sink = spawn('smtp-sink', ['-u', 'root', '-c', `127.0.0.1:${sinkPort}`, '100'], { stdio: 'ignore' });
  const port = await freePort();
  // what was started is stopped when the relay does not start either
  const relay = await startRelay(
    ['--config', writeEsetsCfg(esetsCfg(port, { serverPort: sinkPort, clamdSocket: clamd.socket, smtp: { timeout_message: 590 } }))],
    port, {}, [], process.env.BENCH_DIR ?? PROJECT_DIR,
  ).catch(async (err: Error) => {
    sink.kill();
    await clamd.stop();
    throw err;
  });
  console.log('| size | parts | after the dot, ms (median) | transaction, ms (median) | worker CPU ms/msg | worker peak RSS MB |');
  console.log('|---|---|---|---|---|---|');
  try {
    const worker = childPids(relay.process.pid!)[0];
    for (const [label, bytes] of SIZES) {
      for (const parts of [1, 50]) {
        const text = messageOf(bytes, parts);
        const n = bytes >= 20 * 1024 * 1024 ? Math.max(3, Math.round(rounds / 3)) : rounds;
        const afterDot: number[] = [];
        const whole: number[] = [];
        let peak = rssMb(worker);
        const sampler = setInterval(() => { peak = Math.max(peak, rssMb(worker)); }, 10);
        const cpu0 = cpuMs(worker);
        for (let i = 0; i < n; i++) {
          const client = await SmtpTestClient.connect(port);
          await client.read();
          await client.command('EHLO bench.example');
          const started = Date.now();
          const r = await client.send('a@example.com', ['b@example.org'], text, '', 600_000);
          const ended = Date.now();
          client.end();
          if (r.data?.code !== 250) throw new Error(`${label}/${parts}: ${r.data?.lines.join(' ')}`);
          whole.push(ended - started);
          afterDot.push(ended - (client.dataSentAt ?? ended));
        }
        clearInterval(sampler);
        const cpu = (cpuMs(worker) - cpu0) / n;
        const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
        console.log(`| ${label} | ${parts} | ${median(afterDot)} | ${median(whole)} | ${cpu.toFixed(1)} | ${peak.toFixed(0)} |`);
      }
    }
  } finally {
    await relay.stop();
    sink.kill();
    await clamd.stop();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
