// What /health answers: the relay can do its job only when at least one clamd
// of daemon_sock_path answers (when the policy scans at all), the mail server
// can be reached, it is not stopping (a balancer must send new clients
// elsewhere from the first moment of a drain), and its workers serve (none
// silent, none dying in a loop). Pure: the probes' results in, the HTTP answer out.

import { HEARTBEAT, WorkersState } from './worker_health';

export interface ProbeResult {
  ok: boolean;
  /** why not, when not */
  error?: string;
}

export interface HealthInput {
  /** each clamd address → its probe (empty: the AV stage is not `scan`, no clamd needed) */
  clamd: Record<string, ProbeResult>;
  /** the mail server, `host:port` */
  server: { address: string; result: ProbeResult };
  /** TERM came: the relay drains */
  stopping: boolean;
  /** the cluster's workers (undefined: one process, which answers this itself) */
  workers?: WorkersState;
}

export interface HealthAnswer {
  status: 200 | 503;
  body: {
    status: 'ok' | 'fail';
    /** what fails, in words (empty when ok) */
    failing: string[];
    clamd: Record<string, string>;
    server: Record<string, string>;
    /** each worker's pid → up, starting, or silent for how long */
    workers?: Record<string, string>;
  };
}

const word = (r: ProbeResult): string => (r.ok ? 'up' : `down: ${r.error ?? 'no answer'}`);

function workerWord(w: WorkersState['workers'][number]): string {
  if (!w.serving) return 'starting';
  return w.silentMs >= 2 * HEARTBEAT.everyMs ? `silent ${Math.floor(w.silentMs / 1000)} s` : 'up';
}

export function healthAnswer(input: HealthInput): HealthAnswer {
  const failing: string[] = [];
  const daemons = Object.entries(input.clamd);
  if (daemons.length && !daemons.some(([, r]) => r.ok)) failing.push(`no clamd answers (${daemons.map(([a]) => a).join(', ')})`);
  if (!input.server.result.ok) failing.push(`the mail server ${input.server.address} cannot be reached`);
  if (input.stopping) failing.push('stopping (TERM): new connections belong elsewhere');
  const w = input.workers;
  if (w) {
    for (const late of w.late) failing.push(`worker ${late.pid} silent for ${Math.floor(late.silentMs / 1000)} s`);
    if (w.crashLoop) failing.push(`workers die in a loop (${w.recentDeaths} in the last ${HEARTBEAT.crashWindowMs / 1000} s)`);
    else if (!w.workers.some((x) => x.serving)) failing.push('no worker serves');
  }
  return {
    status: failing.length ? 503 : 200,
    body: {
      status: failing.length ? 'fail' : 'ok',
      failing,
      clamd: Object.fromEntries(daemons.map(([a, r]) => [a, word(r)])),
      server: { [input.server.address]: word(input.server.result) },
      ...(w ? { workers: Object.fromEntries(w.workers.map((x) => [String(x.pid), workerWord(x)])) } : {}),
    },
  };
}
