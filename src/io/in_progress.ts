// The messages in progress, per process, and the manager's view of its
// workers' ones: a worker tells the manager (cluster IPC) when a message's
// DATA starts and when its transaction ends, two small messages per message
// and nothing per line. A worker that dies (kill -9, a crash) cannot log what
// it was doing; the manager then logs one line per message it had in progress.
// The counts are also what the drain lines at TERM say.

import cluster, { Worker } from 'node:cluster';

export interface MessageInProgress {
  /** plugins/shared/trace_id */
  trace: string;
  /** the client's address */
  client: string;
  /** the sender, as the summary line writes it */
  from: string;
}

interface StartNote extends MessageInProgress {
  esets: 'message_start';
}

interface EndNote {
  esets: 'message_end';
  trace: string;
}

const own = new Map<string, MessageInProgress>();

function tellManager(note: StartNote | EndNote): void {
  // a manager that is gone (or a plain haraka -c without cluster) is told nothing
  if (cluster.isWorker && process.connected) process.send?.(note, undefined, {}, () => undefined);
}

/** DATA started: the message is in progress until messageEnded. */
export function messageStarted(m: MessageInProgress): void {
  if (own.has(m.trace)) return;
  own.set(m.trace, m);
  tellManager({ esets: 'message_start', ...m });
}

/** Its transaction ended (answered, reset, the client left). */
export function messageEnded(trace: string): void {
  if (!own.delete(trace)) return;
  tellManager({ esets: 'message_end', trace });
}

/** Messages in progress in this process. */
export function messagesInProgress(): number {
  return own.size;
}

/** The manager's account: worker id → its messages in progress. */
const byWorker = new Map<number, Map<string, MessageInProgress>>();
let watching = false;

/** Messages in progress in every worker (the manager's TERM line). */
export function workersMessagesInProgress(): number {
  let n = 0;
  for (const m of byWorker.values()) n += m.size;
  return n;
}

/**
 * In the manager: follows the workers' notes, and calls `cut` once per
 * worker that ended with messages in progress, with how it ended. The
 * verdict waits for the worker's IPC channel to close, so the notes it sent
 * before it exited are all in.
 */
export function watchWorkersInProgress(cut: (pid: number | undefined, how: string, messages: MessageInProgress[]) => void): void {
  if (watching || !cluster.isPrimary) return;
  watching = true;
  cluster.on('message', (worker: Worker, note: unknown) => {
    const n = note as { esets?: string; trace?: unknown; client?: unknown; from?: unknown } | null;
    if (n?.esets === 'message_start' && typeof n.trace === 'string') {
      const mine = byWorker.get(worker.id) ?? new Map<string, MessageInProgress>();
      byWorker.set(worker.id, mine);
      mine.set(n.trace, { trace: n.trace, client: String(n.client ?? ''), from: String(n.from ?? '') });
    } else if (n?.esets === 'message_end' && typeof n.trace === 'string') {
      byWorker.get(worker.id)?.delete(n.trace);
    }
  });
  // the child process's own events: the launcher and Haraka replace the cluster's and workers' 'exit' listeners
  cluster.on('fork', (worker: Worker) => {
    const child = worker.process;
    child.once('exit', (code, signal) => {
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const settle = (): void => {
        const left = byWorker.get(worker.id);
        byWorker.delete(worker.id);
        if (left?.size) cut(child.pid, how, [...left.values()]);
      };
      if (child.connected) child.once('disconnect', () => setImmediate(settle));
      else setImmediate(settle);
    });
  });
}
