// The manager's own look at what the relay depends on, for /health: each
// clamd answers PING, and the mail server greets (a connection, its 220, QUIT).
// Probed when asked, at most once per PROBE_EVERY_MS (a balancer checking every
// second does not become a load on clamd or the server), concurrent asks share one probe.

import net from 'node:net';
import { healthAnswer, HealthAnswer, ProbeResult } from '../lib/health';
import type { WorkersState } from '../lib/worker_health';
import { CLAMD_PING_MS, SERVER_COMMAND_MS, SERVER_CONNECT_MS } from '../lib/timeout_budget';
import { answersPing } from './clamd_version';
import { connectWithin } from './connect';

const PROBE_EVERY_MS = 2_000;
/** a health check must answer before a balancer gives up on it */
const GREETING_PROBE_MS = Math.min(SERVER_COMMAND_MS, 5_000);
/** the longest a probe (and so a /health request) takes: clamd and the server are asked at once */
export const HEALTH_PROBE_MAX_MS = Math.max(CLAMD_PING_MS, SERVER_CONNECT_MS + GREETING_PROBE_MS);

export interface HealthTargets {
  /** the clamd addresses to ask (none: the relay does not scan) */
  clamd: string[];
  server: { host: string; port: number };
}

/** what this process knows without probing, read at every request (never cached: a drain must show at once) */
export interface ProcessState {
  stopping: boolean;
  workers?: WorkersState;
}

interface Probed {
  clamd: Record<string, ProbeResult>;
  server: { address: string; result: ProbeResult };
}

export class HealthProbe {
  private last?: { at: number; probed: Probed };
  private running?: Promise<Probed>;

  constructor(private readonly targets: () => HealthTargets, private readonly own: () => ProcessState) {}

  async check(now = Date.now()): Promise<HealthAnswer> {
    const probed = this.last && now - this.last.at < PROBE_EVERY_MS ? this.last.probed : await this.probeShared();
    return healthAnswer({ ...probed, ...this.own() });
  }

  private probeShared(): Promise<Probed> {
    this.running ??= this.probe().then((probed) => {
      this.last = { at: Date.now(), probed };
      this.running = undefined;
      return probed;
    });
    return this.running;
  }

  private async probe(): Promise<Probed> {
    const { clamd, server } = this.targets();
    const [daemons, greeting] = await Promise.all([
      Promise.all(clamd.map(async (a): Promise<[string, ProbeResult]> => [
        a,
        (await answersPing(a, CLAMD_PING_MS)) ? { ok: true } : { ok: false, error: 'no PONG' },
      ])),
      greets(server.host, server.port),
    ]);
    return { clamd: Object.fromEntries(daemons), server: { address: `${server.host}:${server.port}`, result: greeting } };
  }
}

/** Connects, waits for a 2xx greeting, says QUIT. */
async function greets(host: string, port: number): Promise<ProbeResult> {
  let socket: net.Socket;
  try {
    socket = await connectWithin(net.connect({ host, port }), SERVER_CONNECT_MS);
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
  return new Promise((resolve) => {
    let text = '';
    const done = (result: ProbeResult): void => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      if (result.ok) socket.end('QUIT\r\n');
      socket.on('error', () => undefined);
      setTimeout(() => socket.destroy(), 1_000).unref();
      resolve(result);
    };
    const timer = setTimeout(() => done({ ok: false, error: `no greeting within ${GREETING_PROBE_MS / 1000} s` }), GREETING_PROBE_MS);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      const line = /^(\d{3}) [^\r\n]*\r?\n/m.exec(text);
      if (!line) return;
      done(line[1].startsWith('2') ? { ok: true } : { ok: false, error: `greeting ${line[0].trim().slice(0, 200)}` });
    });
    socket.on('error', (err) => done({ ok: false, error: err.message }));
    socket.on('close', () => done({ ok: false, error: 'closed before its greeting' }));
  });
}
