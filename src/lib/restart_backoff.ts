// When the manager restarts a worker that died, and when it gives up. Haraka
// restarts a dead worker at once, forever: a worker that cannot start (a
// broken plugin, a port taken) then loops every half second while nothing
// listens. Here: a worker that had served a while is replaced at once; failures
// in a row wait longer each time (up to a minute); and the manager gives up,
// exiting non-zero so a service manager sees it, only when no worker serves
// and the last several starts all failed. It never stops a worker that serves.

export interface BackoffSettings {
  /** a worker that served this long was healthy: its death starts the count again */
  stableMs: number;
  /** the wait before the second restart in a row; it doubles each time after */
  firstDelayMs: number;
  maxDelayMs: number;
  /** failures in a row, with no worker serving, after which the manager gives up */
  giveUpAfter: number;
}

export const RESTART_BACKOFF: BackoffSettings = { stableMs: 10_000, firstDelayMs: 1_000, maxDelayMs: 60_000, giveUpAfter: 5 };

export type RestartDecision = { action: 'restart'; delayMs: number } | { action: 'give_up'; failures: number };

export class RestartBackoff {
  /** worker deaths in a row, none of them after a stable run */
  failures = 0;

  constructor(private readonly settings: BackoffSettings = RESTART_BACKOFF) {}

  /**
   * A worker died. `servedMs`: how long it had been listening (undefined: it
   * never did); `serving`: workers still listening.
   */
  workerDied(servedMs: number | undefined, serving: number): RestartDecision {
    if (servedMs !== undefined && servedMs >= this.settings.stableMs) this.failures = 0;
    this.failures += 1;
    if (serving === 0 && this.failures >= this.settings.giveUpAfter) return { action: 'give_up', failures: this.failures };
    const delayMs = this.failures === 1 ? 0 : Math.min(this.settings.maxDelayMs, this.settings.firstDelayMs * 2 ** (this.failures - 2));
    return { action: 'restart', delayMs };
  }

  /** A worker has been listening for stableMs: the next death is a first one again. */
  workerStable(): void {
    this.failures = 0;
  }
}
