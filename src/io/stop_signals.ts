// The manual's signals (esets_smtp(1) SIGNALS) in every process of the relay,
// under both deployments: TERM stops accepting, lets the transactions in
// progress finish and exits; USR1 exits at once. The launcher installs them
// before Haraka loads; under `haraka -c` the plugins do, at register
// (plugins/shared/stop_signals.ts; until then Node's defaults apply: the
// launcher's entry point covers that gap, an operator's Haraka cannot). Node's
// own USR1 would start its inspector, a debugger port on 127.0.0.1:9229, and
// keep running.

import cluster from 'node:cluster';
import { MAX_TIMEOUT_MESSAGE_S, StopTiming } from '../lib/timeout_budget';
import { underHarakaC } from './config_files';
import { removeProcessDirs } from './process_dirs';
import { answersInFlight, startDraining, startStopping } from './shutdown';
import { workersStopping } from './worker_watch';
import { messagesInProgress, workersMessagesInProgress } from './in_progress';

/** Haraka's server object, as the init_master/init_child hooks pass it */
export interface HarakaServer {
  listeners: Listener[];
  logwarn?(text: string): void;
  lognotice?(text: string): void;
}

/** a net.Server of Haraka's */
interface Listener {
  close(cb?: () => void): void;
  getConnections?(cb: (err: Error | null, count: number) => void): void;
}

interface Supervisor {
  stop(): void;
}

let installed = false;
let harakaServer: HarakaServer | undefined;
const ourListeners = new Set<(...args: unknown[]) => void>();

/** The server whose listeners TERM closes (the one running the plugins, whichever Haraka install it is). */
export function setHarakaServer(server: HarakaServer): void {
  harakaServer = server;
}

/** Whether a SIGTERM listener is this module's (the others are Haraka's: its PID-1 handler exits at once). */
export function isOurListener(listener: (...args: unknown[]) => void): boolean {
  return ourListeners.has(listener);
}

/** after the drain bound, how long the answers just in get to reach their clients */
const ANSWER_GRACE_MS = 1_000;

/**
 * TERM and USR1 with the manual's meaning in this process. `timing`
 * (lib/timeout_budget stopTiming): how long the listener stays open after TERM
 * while /health already fails (the grace), then how long the sessions in
 * progress may take to finish. A TERM that comes again (an impatient operator,
 * or systemd signalling the whole group while the manager passes it on)
 * changes nothing: only USR1 cuts sessions.
 */
export function handleStopSignals(timing: StopTiming, supervisor?: Supervisor): void {
  if (installed) return;
  installed = true;
  // the entry point's handler, for signals that came before this one (bin/esets_smtp.js)
  const early = (process as NodeJS.Process & { earlySignalHandler?: () => void }).earlySignalHandler;
  if (early) {
    process.off('SIGUSR1', early);
    process.off('SIGTERM', early);
  }
  let stopping = false;
  const onTerm = (): void => {
    if (stopping) return;
    stopping = true;
    supervisor?.stop();
    startStopping();
    // the manager starts a replacement now (a worker stopped alone): its listener is closing
    if (cluster.isWorker) process.send?.({ esets: 'draining' });
    if (cluster.isPrimary && cluster.workers && Object.keys(cluster.workers).length) {
      workersStopping();
      const workers = Object.keys(cluster.workers).length;
      const messages = plural(workersMessagesInProgress(), 'message');
      harakaServer?.lognotice?.(`[esets_smtp] TERM: stopping ${plural(workers, 'worker')} with ${messages} `
        + 'in progress; each worker finishes its sessions and says how many it has');
      // the workers' own bounds decide (and the answers awaited at the end); this one only covers a worker that hangs
      stopWorkers('SIGTERM', timing.graceMs + timing.drainMs + MAX_TIMEOUT_MESSAGE_S * 1000 + 5_000);
    } else {
      finishSessions(timing);
    }
  };
  const onUsr1 = (): void => {
    supervisor?.stop();
    stopNow(stoppedCode());
  };
  ourListeners.add(onTerm);
  ourListeners.add(onUsr1);
  process.on('SIGTERM', onTerm);
  process.once('SIGUSR1', onUsr1);
}

/** Whether this module's handling is in force (the launcher, or a plugin before). */
export function stopSignalsInstalled(): boolean {
  return installed;
}

/**
 * The exit code of a process the signals stopped: 0, except a worker of an
 * operator's Haraka cluster. Haraka's master replaces a worker only when it
 * exits non-zero, and a worker stopped alone (TERM or USR1 to its PID) must be
 * replaced; when the master stops them all it no longer replaces any.
 */
function stoppedCode(): number {
  return cluster.isWorker && underHarakaC() ? 1 : 0;
}

/** Exits at once, workers first (their spool folders with them: a killed process cannot clean up). */
export function stopNow(code: number): void {
  if (cluster.isPrimary) {
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (!worker?.process.pid) continue;
      worker.process.kill('SIGKILL');
      removeProcessDirs('spool', worker.process.pid);
    }
  }
  process.exit(code);
}

/**
 * After the grace (new clients still served while a balancer learns from
 * /health), stops accepting; exits when the open sessions have ended, or after
 * `drainMs`, then cutting the sessions left, except those whose message is at
 * the server awaiting its answer: those are waited for (each bounded by its own
 * timeout_message), so no client is cut off from a message the server takes.
 */
function finishSessions(timing: StopTiming): void {
  if (timing.graceMs > 0) {
    harakaServer?.lognotice?.(`[esets_smtp] TERM: new connections are taken for ${timing.graceMs / 1000} s more (drain_grace), `
      + 'then the sessions in progress finish');
    setTimeout(() => closeAndDrain(timing.drainMs), timing.graceMs);
  } else {
    closeAndDrain(timing.drainMs);
  }
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** The client sessions open on these listeners (each process counts its own). */
function openSessions(listeners: readonly Listener[]): Promise<number> {
  return Promise.all(listeners.map((l) => new Promise<number>((resolve) => {
    if (!l.getConnections) return resolve(0);
    l.getConnections((err, count) => resolve(err ? 0 : count));
  }))).then((counts) => counts.reduce((a, b) => a + b, 0));
}

/** `N sessions and M messages in progress` in this process, for the drain lines. */
async function inProgressText(listeners: readonly Listener[]): Promise<string> {
  return `${plural(await openSessions(listeners), 'session')} and ${plural(messagesInProgress(), 'message')} in progress`;
}

function closeAndDrain(drain: number): void {
  startDraining();
  const listeners = harakaServer?.listeners.splice(0) ?? [];
  const all = [...listeners];
  void inProgressText(all).then((text) => harakaServer?.lognotice?.(`[esets_smtp] TERM: draining ${text}: they finish `
    + `within ${drain / 1000} s (the drain bound), then the process exits`));
  let open = listeners.length;
  const done = (): void => {
    if (--open <= 0) process.exit(stoppedCode());
  };
  if (open === 0) process.exit(stoppedCode());
  for (const listener of listeners) listener.close(done);
  setTimeout(() => {
    void Promise.all([answersInFlight(), inProgressText(all)]).then(([n, text]) => {
      harakaServer?.logwarn?.(`[esets_smtp] TERM: the drain bound (${drain / 1000} s) passed`
        + `${n ? ` and ${n} answer(s) of the mail server came in` : ''}: ${text} are cut`);
      // (a moment for the answers that came in to reach their clients)
      setTimeout(() => process.exit(stoppedCode()), n ? ANSWER_GRACE_MS : 0);
    });
  }, drain).unref?.();
}

function stopWorkers(signal: NodeJS.Signals, waitMs: number): void {
  // Haraka restarts workers that exit; not now
  cluster.removeAllListeners('exit');
  const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
  for (const worker of workers) {
    worker.removeAllListeners('exit');
    worker.process.kill(signal);
  }
  let alive = workers.length;
  for (const worker of workers) {
    worker.once('exit', () => {
      if (--alive === 0) process.exit(0);
    });
  }
  // past the bound, the workers left (hung) are killed and their spool folders removed, as USR1 does
  setTimeout(() => stopNow(0), waitMs);
}
