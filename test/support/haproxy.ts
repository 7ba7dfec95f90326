// A private real HAProxy (Debian haproxy 2.6) in TCP mode in front of relays,
// sending the PROXY protocol: one frontend per balancer address, each
// connecting to the relay from its own source address (an HA pair of
// balancers on one machine). Runs in the foreground (-db), stopped by PID.

import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { canConnect } from './processes';
import { freePort } from './relay';
import { removeTempDir, tempDir } from './temp_dirs';

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
  const dir = tempDir('esets-haproxy-');
  const balancers: Balancer[] = [];
  for (const source of sources) balancers.push({ port: await freePort(), source });
  const running = await runHaproxy(dir, [
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
  ], balancers.map((b) => b.port));
  return { balancers, ...running };
}

/** A relay behind the pool: its SMTP port and its http_listen port (/health). */
export interface PoolMember {
  port: number;
  healthPort: number;
}

export interface HaproxyPool {
  /** the port clients connect to (127.0.0.1) */
  port: number;
  /** HAProxy's view of each member (r0, r1, ...): UP, DOWN, ... from its stats socket */
  states(): Promise<string[]>;
  output(): string;
  stop(): Promise<void>;
}

/**
 * The recipe of docs/load_balancer.md: one frontend, round robin over the relays, the PROXY protocol from
 * `source`, health from GET /health on each relay's http_listen (never an SMTP session), retries
 * redispatched. `interMs`, `fall`, `rise`: the check's timing.
 */
export async function startHaproxyPool(
  members: PoolMember[], source: string, check: { interMs: number; fall: number; rise: number },
): Promise<HaproxyPool> {
  const dir = tempDir('esets-haproxy-');
  const port = await freePort();
  const stats = path.join(dir, 'stats.sock');
  const running = await runHaproxy(dir, [
    'global',
    '  maxconn 400',
    `  stats socket ${stats} mode 600 level admin`,
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 120s',
    '  timeout server 120s',
    '  timeout check 5s',
    '  retries 3',
    '  option redispatch',
    'frontend smtp',
    `  bind 127.0.0.1:${port}`,
    '  default_backend relays',
    'backend relays',
    '  balance roundrobin',
    '  option httpchk GET /health',
    '  http-check expect status 200',
    `  default-server inter ${check.interMs} fall ${check.fall} rise ${check.rise}`,
    ...members.map((m, i) => `  server r${i} 127.0.0.1:${m.port} send-proxy source ${source} check port ${m.healthPort}`),
  ], [port]);
  const states = (): Promise<string[]> => new Promise((resolve, reject) => {
    const s = net.connect(stats);
    let text = '';
    s.on('data', (d) => { text += d.toString(); });
    s.on('error', reject);
    s.on('end', () => {
      // CSV: pxname,svname,...,status (column 18)
      const rows = text.split('\n').filter((l) => l.startsWith('relays,r')).map((l) => l.split(','));
      resolve(rows.sort((a, b) => a[1].localeCompare(b[1])).map((r) => r[17]));
    });
    s.end('show stat\n');
  });
  return { port, states, ...running };
}

/** A running HAProxy: its output and how to stop it (its folder removed). */
interface Running {
  output(): string;
  stop(): Promise<void>;
}

/** Writes `cfg` in `dir`, runs HAProxy in the foreground on it, resolves once every port in `ports` takes connections. */
async function runHaproxy(dir: string, cfg: string[], ports: number[]): Promise<Running> {
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, [...cfg, ''].join('\n'));
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += d.toString(); });
  child.stderr!.on('data', (d) => { out += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    removeTempDir(dir);
  };
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited:\n${out}`);
    if ((await Promise.all(ports.map((p) => canConnect(p)))).every(Boolean)) return { output: () => out, stop };
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error(`haproxy did not listen:\n${out}`);
}
