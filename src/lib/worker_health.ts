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
  /** this many unplanned deaths within crashWindowMs is a crash loop */
  crashDeaths: number;
  crashWindowMs: number;
}

export const HEARTBEAT: HeartbeatSettings = { everyMs: 1_000, lateMs: 3_000, replaceMs: 8_000, crashDeaths: 3, crashWindowMs: 30_000 };

export interface WorkerView {
  pid: number;
  /** listening for clients */
  serving: boolean;
  /** ms since its last heartbeat (or its start) */
  silentMs: number;
}

export interface WorkersState {
  workers: WorkerView[];
  /** serving workers silent past lateMs */
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
  lastBeat: number;
}

export class WorkerHealth {
  private readonly workers = new Map<number, Tracked>();
  private deaths: number[] = [];

  constructor(private readonly settings: HeartbeatSettings = HEARTBEAT) {}

  started(id: number, pid: number, now: number): void {
    this.workers.set(id, { pid, stage: 'starting', lastBeat: now });
  }

  listening(id: number, now: number): void {
    const w = this.workers.get(id);
    if (w?.stage !== 'starting') return;
    w.stage = 'serving';
    w.lastBeat = now;
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
    const workers = [...this.workers.values()]
      .filter((w) => w.stage === 'starting' || w.stage === 'serving')
      .map((w) => ({ pid: w.pid, serving: w.stage === 'serving', silentMs: Math.max(0, now - w.lastBeat) }));
    return {
      workers,
      late: workers.filter((w) => w.serving && w.silentMs >= this.settings.lateMs),
      recentDeaths: this.deaths.length,
      crashLoop: this.deaths.length >= this.settings.crashDeaths,
    };
  }

  /**
   * Serving workers silent past replaceMs. (A worker still starting is left alone: loading the plugins on a
   * busy machine may take seconds, and the connections go to the serving ones meanwhile.)
   */
  toReplace(now: number): { id: number; pid: number; silentMs: number }[] {
    return [...this.workers.entries()]
      .filter(([, w]) => w.stage === 'serving' && now - w.lastBeat >= this.settings.replaceMs)
      .map(([id, w]) => ({ id, pid: w.pid, silentMs: now - w.lastBeat }));
  }
}
