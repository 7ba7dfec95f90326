// Where one message's time goes at one session: the mean latency of each SMTP
// step (new connection per message, 2 KB) through the relay, with action_av =
// scan and with action_av = accept (no scan), and clamd's own time from the
// message's last byte to its verdict. A test client that waits for every
// reply, so each step's figure is the relay's (and what it waits for).
// Run: npm run bench:steps  (prints Markdown)

import { ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import { Clamd, startClamd } from '../test/support/clamd';
import { stopChild } from '../test/support/processes';
import { esetsCfg, freePort, Relay, startRelay, writeEsetsCfg } from '../test/support/relay';
import { SmtpTestClient } from '../test/support/smtp_client';

const MESSAGES = Number(process.env.STEPS_MESSAGES ?? 400);
const WARMUP = 50;
const STEPS = ['greeting', 'EHLO', 'MAIL', 'RCPT', 'DATA', 'message + dot', 'QUIT'] as const;
const LINE = 'The quarterly figures are attached as discussed in our meeting.\r\n';

async function sessionSteps(port: number): Promise<number[]> {
  const sums = STEPS.map(() => 0);
  for (let i = 0; i < WARMUP + MESSAGES; i++) {
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
    client.write(`Subject: steps ${i} ${Date.now()}\r\n\r\n${LINE.repeat(31)}.\r\n`);
    await client.read();
    mark();
    await client.command('QUIT');
    mark();
    client.destroy();
    if (i >= WARMUP) for (let s = 0; s < STEPS.length; s++) sums[s] += Number(times[s + 1] - times[s]) / 1e6;
  }
  return sums.map((v) => v / MESSAGES);
}

/** clamd alone: from the last byte of a 2 KB INSTREAM (on a connection opened before) to the verdict. */
async function clamdVerdictMs(clamd: Clamd): Promise<number> {
  let sum = 0;
  for (let i = 0; i < WARMUP + MESSAGES; i++) {
    const body = Buffer.from(`Subject: alone ${i} ${Date.now()}\r\n\r\n${LINE.repeat(31)}`);
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
  try {
    for (const action of ['scan', 'accept']) {
      const port = await freePort();
      const relay: Relay = await startRelay(['--config', writeEsetsCfg(esetsCfg(port, { serverPort: sinkPort, clamdSocket: clamd.socket, smtp: { action_av: action } }))], port);
      try {
        const steps = await sessionSteps(port);
        rows.push(`| relay, action_av = ${action} | ${steps.map((v) => v.toFixed(2)).join(' | ')} | ${steps.reduce((a, b) => a + b, 0).toFixed(2)} |`);
      } finally {
        await relay.stop();
      }
    }
    const verdict = await clamdVerdictMs(clamd);
    const out = [
      `Run of ${new Date().toISOString()}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}; ${MESSAGES} messages of 2 KB (after ${WARMUP} not counted), one session, a new connection each; mean ms per step.`,
      '',
      `| target | ${STEPS.join(' | ')} | total |`,
      `|---|${STEPS.map(() => '---').join('|')}|---|`,
      ...rows,
      '',
      `clamd alone, last byte of a 2 KB INSTREAM to its verdict: ${verdict.toFixed(2)} ms.`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    await stopChild(sink);
    await clamd.stop();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack}\n`);
  process.exitCode = 1;
});
