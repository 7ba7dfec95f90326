// Where one message's time goes at one session: the mean latency of each SMTP
// step (new connection per message, 2 KB unless STEPS_KB) through the relay, with action_av =
// scan and with action_av = accept (no scan), and clamd's own time from the
// message's last byte to its verdict. A test client that waits for every
// reply, so each step's figure is the relay's (and what it waits for).
// Run: npm run bench:steps  (prints Markdown)
// BENCH_OLD_DIR=/path/to/another/checkout (built) adds that checkout's launcher with the same
// settings, and with action_av_notscanned = accept (no early send where there was one); the
// targets then take turns, 50 messages at a time, so that drift touches them alike.
// STEPS_KB=100: messages of about that size instead of 2 KB.

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Clamd, startClamd } from '../test/support/clamd';
import { stopChild } from '../test/support/processes';
import { esetsCfg, freePort, PROJECT_DIR, Relay, startRelay, writeEsetsCfg } from '../test/support/relay';
import { SmtpTestClient } from '../test/support/smtp_client';

const MESSAGES = Number(process.env.STEPS_MESSAGES ?? 400);
const WARMUP = 50;
/** messages per turn when several targets take turns */
const TURN = 50;
const OLD_DIR = process.env.BENCH_OLD_DIR ? path.resolve(process.env.BENCH_OLD_DIR) : undefined;
const STEPS = ['greeting', 'EHLO', 'MAIL', 'RCPT', 'DATA', 'message + dot', 'QUIT'] as const;
const LINE = 'The quarterly figures are attached as discussed in our meeting.\r\n';
const KB = Number(process.env.STEPS_KB ?? 2);
/** body lines: about KB kilobytes (31 lines: 2 KB) */
const LINES = Math.max(1, Math.round((KB * 1024) / LINE.length) - 1);

/** the sums of each step's ms over `count` messages (the first `warmup` not counted) */
async function sessionSteps(port: number, count: number, warmup = WARMUP): Promise<number[]> {
  const sums = STEPS.map(() => 0);
  for (let i = 0; i < warmup + count; i++) {
    const times: bigint[] = [process.hrtime.bigint()];
    const mark = (): void => { times.push(process.hrtime.bigint()); };
    const client = await SmtpTestClient.connect(port);
    await client.read();
    mark();
    await client.command('EHLO client.example');
    mark();
    await client.command('MAIL FROM:<bench@example.com>');
    mark();
    await client.command('RCPT TO:<user@example.org>');
    mark();
    await client.command('DATA');
    mark();
    // distinct messages: clamd caches verdicts of contents it has seen
    client.write(`Subject: steps ${i} ${Date.now()}\r\n\r\n${LINE.repeat(LINES)}.\r\n`);
    await client.read();
    mark();
    await client.command('QUIT');
    mark();
    client.destroy();
    if (i >= warmup) for (let s = 0; s < STEPS.length; s++) sums[s] += Number(times[s + 1] - times[s]) / 1e6;
  }
  return sums;
}

/** clamd alone: from the last byte of a KB-sized INSTREAM (on a connection opened before) to the verdict. */
async function clamdVerdictMs(clamd: Clamd): Promise<number> {
  let sum = 0;
  for (let i = 0; i < WARMUP + MESSAGES; i++) {
    const body = Buffer.from(`Subject: alone ${i} ${Date.now()}\r\n\r\n${LINE.repeat(LINES)}`);
    const frame = Buffer.alloc(4 + body.length + 4);
    frame.writeUInt32BE(body.length);
    body.copy(frame, 4);
    const socket = net.connect(clamd.socket);
    socket.setNoDelay(true);
    await new Promise((r) => socket.once('connect', r));
    socket.write('zINSTREAM\0');
    await new Promise((r) => setTimeout(r, 2));
    const started = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      socket.on('data', (d) => { if (d.includes(0)) resolve(); });
      socket.on('error', reject);
      socket.write(frame);
    });
    if (i >= WARMUP) sum += Number(process.hrtime.bigint() - started) / 1e6;
    socket.destroy();
  }
  return sum / MESSAGES;
}

async function main(): Promise<void> {
  const clamd = await startClamd();
  const sinkPort = await freePort();
  const sink: ChildProcess = spawn('smtp-sink', ['-u', 'root', `127.0.0.1:${sinkPort}`, '1000'], { stdio: 'ignore' });
  const rows: string[] = [];
  const relays: { name: string; relay: Relay }[] = [];
  try {
    const variants: { name: string; smtp: Record<string, string>; dir: string }[] = [
      { name: 'relay, action_av = scan', smtp: { action_av: 'scan' }, dir: PROJECT_DIR },
      { name: 'relay, action_av = accept', smtp: { action_av: 'accept' }, dir: PROJECT_DIR },
    ];
    if (OLD_DIR) {
      const old = execFileSync('git', ['-C', OLD_DIR, 'rev-parse', '--short=7', 'HEAD'], { encoding: 'utf8' }).trim();
      variants.push(
        { name: `relay (${old}), action_av = scan`, smtp: { action_av: 'scan' }, dir: OLD_DIR },
        {
          name: `relay (${old}), action_av = scan, no early send`,
          smtp: { action_av: 'scan', action_av_notscanned: 'accept' }, dir: OLD_DIR,
        },
        { name: `relay (${old}), action_av = accept`, smtp: { action_av: 'accept' }, dir: OLD_DIR },
      );
    }
    for (const v of variants) {
      const port = await freePort();
      relays.push({
        name: v.name,
        relay: await startRelay([
          '--config', writeEsetsCfg(esetsCfg(port, { serverPort: sinkPort, clamdSocket: clamd.socket, smtp: v.smtp })),
        ], port, {}, [], v.dir),
      });
    }
    const sums = relays.map(() => STEPS.map(() => 0));
    for (const r of relays) await sessionSteps(r.relay.port, 0);
    // one target alone: all its messages at once, as before; several: turns of TURN messages
    const turn = relays.length > 1 ? TURN : MESSAGES;
    for (let done = 0; done < MESSAGES; done += turn) {
      for (let i = 0; i < relays.length; i++) {
        const steps = await sessionSteps(relays[i].relay.port, Math.min(turn, MESSAGES - done), 0);
        steps.forEach((v, s) => { sums[i][s] += v; });
      }
    }
    relays.forEach((r, i) => {
      const steps = sums[i].map((v) => v / MESSAGES);
      rows.push(`| ${r.name} | ${steps.map((v) => v.toFixed(2)).join(' | ')} | ${steps.reduce((a, b) => a + b, 0).toFixed(2)} |`);
    });
    const verdict = await clamdVerdictMs(clamd);
    const out = [
      `Run of ${new Date().toISOString()}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}; `
        + `${MESSAGES} messages of ${KB} KB (after ${WARMUP} not counted), one session, a new connection each; mean ms per step.`,
      '',
      `| target | ${STEPS.join(' | ')} | total |`,
      `|---|${STEPS.map(() => '---').join('|')}|---|`,
      ...rows,
      '',
      `clamd alone, last byte of a ${KB} KB INSTREAM to its verdict: ${verdict.toFixed(2)} ms.`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    for (const r of relays) await r.relay.stop();
    await stopChild(sink);
    await clamd.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack}\n`);
  process.exitCode = 1;
});
