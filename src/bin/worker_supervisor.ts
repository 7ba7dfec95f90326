// The manager's restarts of dead workers, in place of Haraka's (which
// restarts at once, forever): lib/restart_backoff decides when, and when to
// give up. Only the launcher installs it.

import cluster, { Worker } from 'node:cluster';
import { RESTART_BACKOFF, RestartBackoff } from '../lib/restart_backoff';

export interface SupervisorLog {
  notice(text: string): void;
  error(text: string): void;
}

export interface Supervisor {
  /** no restarts from now on (the relay is stopping) */
  stop(): void;
}

export function superviseWorkers(log: SupervisorLog, giveUp: () => void): Supervisor {
  const backoff = new RestartBackoff();
  /** listening workers: id → since when */
  const listening = new Map<number, number>();
  const pending = new Set<NodeJS.Timeout>();
  let stopping = false;

  cluster.on('listening', (worker: Worker) => {
    listening.set(worker.id, Date.now());
    backoff.workerListening();
    setTimeout(() => {
      if (listening.has(worker.id)) backoff.workerStable();
    }, RESTART_BACKOFF.stableMs).unref();
  });

  /** workers already replaced (stopped alone: their replacement started while they drained) */
  const replaced = new Set<number>();
  const fork = (after: number): void => {
    try {
      const replacement = cluster.fork({ CLUSTER_MASTER_PID: String(process.pid) });
      // a process that could not be started: said, and tried again (an 'error' with no listener would end the manager)
      replacement.on('error', (err: Error) => {
        log.error(`worker ${replacement.process.pid ?? '(not started)'}: ${err.message}`);
        if (replacement.process.pid === undefined && !stopping) setTimeout(() => fork(after), RESTART_BACKOFF.firstDelayMs * 5).unref();
      });
      // as Haraka does: the new worker takes over the dead one's outbound queue files
      if (replacement.process.pid !== undefined) replacement.send({ event: 'outbound.load_pid_queue', data: after }, () => undefined);
    } catch (err) {
      // (out of processes or file descriptors) a fork that fails is a start that failed: tried again later
      log.error(`cannot start a worker: ${(err as Error).message}`);
    }
  };

  // a worker stopped alone (TERM) drains with its listener closed: its replacement starts now, not when it exits
  cluster.on('message', (worker: Worker, message: unknown) => {
    if (stopping || (message as { esets?: string } | null)?.esets !== 'draining' || replaced.has(worker.id)) return;
    replaced.add(worker.id);
    listening.delete(worker.id);
    log.notice(`worker ${worker.process.pid} is stopping (TERM): a new one starts now`);
    fork(worker.process.pid ?? 0);
  });

  const onExit = (worker: Worker, code: number | null, signal: string | null): void => {
    const since = listening.get(worker.id);
    listening.delete(worker.id);
    if (replaced.delete(worker.id)) return;
    // while the manager runs, every worker that ends is replaced (one told to stop alone, exit 0, too)
    if (stopping) return;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const decision = backoff.workerDied(since === undefined ? undefined : Date.now() - since, listening.size);
    const pid = worker.process.pid;
    if (decision.action === 'give_up') {
      log.error(`worker ${pid} ${how} before listening: no worker could start `
        + `(${decision.failures} in a row died before listening; their errors are above). esets_smtp stops`);
      stopping = true;
      return giveUp();
    }
    const when = decision.delayMs ? `in ${decision.delayMs / 1000} s` : 'now';
    const line = `worker ${pid} ${how}${since === undefined ? ' before listening' : ''}: a new one starts ${when}`;
    if (decision.delayMs) log.error(line);
    else log.notice(line);
    const timer = setTimeout(() => {
      pending.delete(timer);
      if (!stopping) fork(pid ?? 0);
    }, decision.delayMs);
    pending.add(timer);
  };

  // Haraka adds its own exit listener right after it forks the first workers (same tick): ours replaces it
  cluster.once('fork', () => setImmediate(() => {
    cluster.removeAllListeners('exit');
    cluster.on('exit', onExit);
  }));

  return {
    stop(): void {
      stopping = true;
      for (const timer of pending) clearTimeout(timer);
      pending.clear();
    },
  };
}
