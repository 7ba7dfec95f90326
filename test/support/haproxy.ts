// A private real HAProxy (Debian haproxy 2.6) in TCP mode in front of relays,
// sending the PROXY protocol: one frontend per balancer address, each
// connecting to the relay from its own source address (an HA pair of
// balancers on one machine). Runs in the foreground (-db), stopped by PID.

import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { canConnect } from './processes';
import { freePort } from './relay';

export interface Balancer {
  /** the port clients connect to (127.0.0.1) */
  port: number;
  /** the address this balancer connects to the relay from */
  source: string;
}

export interface HaproxyInstance {
  balancers: Balancer[];
  output(): string;
  stop(): Promise<void>;
}

export async function startHaproxy(
  relayPort: number, sources: string[], proxyProtocol: 'send-proxy' | 'send-proxy-v2' = 'send-proxy',
): Promise<HaproxyInstance> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esets-haproxy-'));
  const balancers: Balancer[] = [];
  for (const source of sources) balancers.push({ port: await freePort(), source });
  const cfg = [
    'global',
    '  maxconn 200',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 120s',
    '  timeout server 120s',
    ...balancers.flatMap((b, i) => [
      `frontend smtp_${i}`,
      `  bind 127.0.0.1:${b.port}`,
      `  default_backend relays_${i}`,
      `backend relays_${i}`,
      `  server relay 127.0.0.1:${relayPort} ${proxyProtocol} source ${b.source}`,
    ]),
    '',
  ].join('\n');
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, cfg);
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += d.toString(); });
  child.stderr!.on('data', (d) => { out += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited:\n${out}`);
    if ((await Promise.all(balancers.map((b) => canConnect(b.port)))).every(Boolean)) return { balancers, output: () => out, stop };
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error(`haproxy did not listen:\n${out}`);
}
