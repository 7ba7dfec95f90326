// Heartbeats between the workers and the manager (lib/worker_health decides).
// In a worker: a message every HEARTBEAT.everyMs over the cluster channel. In
// the manager: the workers' starts, listens, heartbeats and exits, kept for
// /health; a worker silent past HEARTBEAT.replaceMs (or without a first
// heartbeat HEARTBEAT.startMs after its start) is killed (Haraka's master or
// the launcher's supervisor then starts a new one) and that is logged. No SMTP session is opened to find out: the heartbeat tells.

import cluster, { Worker } from 'node:cluster';
import { HEARTBEAT, WorkerHealth, WorkersState } from '../lib/worker_health';

const BEAT = 'esets_heartbeat';
/** a worker stopping alone says so (io/stop_signals): its silence from then on is no fault */
const DRAINING = 'draining';

export interface WatchLog {
  warn(text: string): void;
}

let beating = false;

/** In a worker: the heartbeat, until the process ends (the timer does not keep it alive). */
export function startHeartbeat(): void {
  if (beating || !cluster.isWorker || !process.send) return;
  beating = true;
  const beat = (): void => {
    // (a manager gone: nothing to tell)
    if (process.connected) process.send?.({ esets: BEAT }, undefined, {}, () => undefined);
  };
  beat();
  setInterval(beat, HEARTBEAT.everyMs).unref();
}

let watch: WorkerHealth | undefined;
let stopping = false;

/** In the manager of a cluster: watches the workers from now on. */
export function watchWorkers(log: WatchLog): void {
  if (watch || !cluster.isPrimary) return;
  const health = new WorkerHealth();
  watch = health;
  const now = (): number => Date.now();
  // each worker's own 'exit' (the cluster-wide listeners are replaced by the launcher's supervisor)
  const track = (w: Worker): void => {
    health.started(w.id, w.process.pid ?? 0, now());
    w.once('exit', () => health.exited(w.id, stopping, now()));
  };
  for (const w of Object.values(cluster.workers ?? {})) if (w) track(w);
  cluster.on('fork', track);
  cluster.on('listening', (w: Worker) => health.listening(w.id, now()));
  cluster.on('message', (w: Worker, message: unknown) => {
    const kind = (message as { esets?: string } | null)?.esets;
    if (kind === BEAT) health.beat(w.id, now());
    else if (kind === DRAINING) health.retired(w.id);
  });
  // (also while the relay stops: a hung worker would otherwise hold the stop for its whole bound)
  setInterval(() => {
    for (const late of health.toReplace(now())) {
      const worker = cluster.workers?.[late.id];
      log.warn(`worker ${late.pid} has sent no heartbeat for ${Math.round(late.silentMs / 1000)} s (hung or stopped): `
        + (stopping ? 'it is killed' : 'it is killed and a new one started'));
      health.replaced(late.id);
      // (SIGKILL: a stopped process takes no other signal; a hung one would not act on it)
      worker?.process.kill('SIGKILL');
    }
  }, HEARTBEAT.everyMs).unref();
}

/** The relay stops: workers exiting from now on are no crash, and none is replaced. */
export function workersStopping(): void {
  stopping = true;
}

/** What the watch knows now (undefined: no cluster, or not watched). */
export function workersState(): WorkersState | undefined {
  return watch?.state(Date.now());
}
