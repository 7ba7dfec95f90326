// Whether the workers of a cluster serve, as the manager sees them: each
// worker sends a heartbeat every second; one that stays silent (stopped,
// hung in a loop) still gets its share of the connections the manager hands
// out, so it makes /health fail and, past a longer silence, is replaced.
// Workers that die again and again (a crash loop) make /health fail too, until
// deaths stop for a while. Pure: events and the time in, the state out.

export interface HeartbeatSettings {
  /** how often a worker says it is alive */
  everyMs: number;
  /** silent this long: /health fails (a balancer sends new clients elsewhere) */
  lateMs: number;
  /** silent this long: the worker is killed and replaced */
  replaceMs: number;
  /** a worker that has not sent its first heartbeat this long after its start is killed and replaced */
  startMs: number;
  /** this many unplanned deaths within crashWindowMs is a crash loop */
  crashDeaths: number;
  crashWindowMs: number;
}

export const HEARTBEAT: HeartbeatSettings = {
  everyMs: 1_000, lateMs: 3_000, replaceMs: 8_000, startMs: 60_000, crashDeaths: 3, crashWindowMs: 30_000,
};

export interface WorkerView {
  pid: number;
  /** listening for clients */
  serving: boolean;
  /** ms since its last heartbeat (or its start) */
  silentMs: number;
}

export interface WorkersState {
  workers: WorkerView[];
  /** workers silent past lateMs since their last heartbeat */
  late: WorkerView[];
  /** unplanned deaths within the crash window */
  recentDeaths: number;
  crashLoop: boolean;
}

/** starting: not yet listening; serving; retired: told to stop (drains, then exits); replaced: killed for its silence */
type WorkerStage = 'starting' | 'serving' | 'retired' | 'replaced';

interface Tracked {
  pid: number;
  stage: WorkerStage;
  startedAt: number;
  /** its last heartbeat (undefined: none yet: it is loading its plugins) */
  lastBeat?: number;
}

export class WorkerHealth {
  private readonly workers = new Map<number, Tracked>();
  private deaths: number[] = [];

  constructor(private readonly settings: HeartbeatSettings = HEARTBEAT) {}

  started(id: number, pid: number, now: number): void {
    this.workers.set(id, { pid, stage: 'starting', startedAt: now });
  }

  listening(id: number, now: number): void {
    const w = this.workers.get(id);
    if (w?.stage !== 'starting') return;
    w.stage = 'serving';
    w.lastBeat ??= now;
  }

  beat(id: number, now: number): void {
    const w = this.workers.get(id);
    if (w) w.lastBeat = now;
  }

  /** A worker told to stop (TERM): it drains and exits, which is no death; its silence no longer matters. */
  retired(id: number): void {
    const w = this.workers.get(id);
    if (w) w.stage = 'retired';
  }

  /** A worker killed for its silence: counted as a death when it exits, reported once. */
  replaced(id: number): void {
    const w = this.workers.get(id);
    if (w) w.stage = 'replaced';
  }

  /** `stopping`: the whole relay stops (no exit is a death then) */
  exited(id: number, stopping: boolean, now: number): void {
    const w = this.workers.get(id);
    this.workers.delete(id);
    if (!stopping && w?.stage !== 'retired') this.deaths.push(now);
  }

  state(now: number): WorkersState {
    this.deaths = this.deaths.filter((t) => now - t < this.settings.crashWindowMs);
    const watched = [...this.workers.values()].filter((w) => w.stage === 'starting' || w.stage === 'serving');
    const view = (w: Tracked): WorkerView => ({ pid: w.pid, serving: w.stage === 'serving', silentMs: silence(w, now) });
    return {
      workers: watched.map(view),
      // (a worker still loading its plugins sends nothing yet: only one that has begun to beat can be late)
      late: watched.filter((w) => w.lastBeat !== undefined && silence(w, now) >= this.settings.lateMs).map(view),
      recentDeaths: this.deaths.length,
      crashLoop: this.deaths.length >= this.settings.crashDeaths,
    };
  }

  /**
   * Workers to kill and replace: silent past replaceMs once they have begun to beat (serving, starting, or
   * draining after TERM: a hung worker would hold the stop for its whole bound), or without a first heartbeat
   * startMs after their start (hung while loading; loading the plugins on a busy machine takes seconds).
   */
  toReplace(now: number): { id: number; pid: number; silentMs: number }[] {
    return [...this.workers.entries()]
      .filter(([, w]) => w.stage !== 'replaced'
        && (w.lastBeat === undefined ? now - w.startedAt >= this.settings.startMs : now - w.lastBeat >= this.settings.replaceMs))
      .map(([id, w]) => ({ id, pid: w.pid, silentMs: silence(w, now) }));
  }
}

function silence(w: Tracked, now: number): number {
  return Math.max(0, now - (w.lastBeat ?? w.startedAt));
}
