// A real spamd (Debian spamassassin) on a loopback port, network tests off
// (-L: no DNS here). Stopped by PID.

import { ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { stopChild } from './processes';
import { freePort } from './relay';

export interface Spamd {
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startSpamd(): Promise<Spamd> {
  const port = await freePort();
  const child = spawn('spamd', ['-L', '--listen', `127.0.0.1:${port}`, '--max-children', '2', '-u', 'nobody', '--syslog', 'stderr'], {
    stdio: 'ignore',
  });
  const stop = (): Promise<void> => stopChild(child);
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline && child.exitCode === null) {
    if (await ping(port)) return { port, process: child, stop };
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  throw new Error('spamd did not start within 90 s');
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let reply = '';
    s.on('connect', () => s.write('PING SPAMC/1.5\r\n\r\n'));
    s.on('data', (d) => { reply += d.toString(); });
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(/PONG/.test(reply)));
  });
}
