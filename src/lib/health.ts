// What /health answers: the relay can do its job only when at least one clamd
// of daemon_sock_path answers (when the policy scans at all) and the mail
// server can be reached. Pure: the probes' results in, the HTTP answer out.

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
}

export interface HealthAnswer {
  status: 200 | 503;
  body: {
    status: 'ok' | 'fail';
    /** what fails, in words (empty when ok) */
    failing: string[];
    clamd: Record<string, string>;
    server: Record<string, string>;
  };
}

const word = (r: ProbeResult): string => (r.ok ? 'up' : `down: ${r.error ?? 'no answer'}`);

export function healthAnswer(input: HealthInput): HealthAnswer {
  const failing: string[] = [];
  const daemons = Object.entries(input.clamd);
  if (daemons.length && !daemons.some(([, r]) => r.ok)) failing.push(`no clamd answers (${daemons.map(([a]) => a).join(', ')})`);
  if (!input.server.result.ok) failing.push(`the mail server ${input.server.address} cannot be reached`);
  return {
    status: failing.length ? 503 : 200,
    body: {
      status: failing.length ? 'fail' : 'ok',
      failing,
      clamd: Object.fromEntries(daemons.map(([a, r]) => [a, word(r)])),
      server: { [input.server.address]: word(input.server.result) },
    },
  };
}
