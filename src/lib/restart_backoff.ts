// When the manager restarts a worker that died, and when it gives up. Haraka
// restarts a dead worker at once, forever: a worker that cannot start (a
// broken plugin, a port taken) then loops every half second while nothing
// listens. Here: a worker that had served a while is replaced at once; deaths
// in a row wait longer each time (up to a minute), but never more than a
// second while no worker serves (a wait then is an outage); and the manager
// gives up, exiting non-zero so a service manager sees it, only when no worker
// serves and the last several workers all died before they listened (they
// cannot start). Killing workers that serve never stops the relay.

export interface BackoffSettings {
  /** a worker that served this long was healthy: its death starts the count again */
  stableMs: number;
  /** the wait before the second restart in a row; it doubles each time after; the most while none serves */
  firstDelayMs: number;
  maxDelayMs: number;
  /** workers in a row that died before listening, with none serving, after which the manager gives up */
  giveUpAfter: number;
}

export const RESTART_BACKOFF: BackoffSettings = { stableMs: 10_000, firstDelayMs: 1_000, maxDelayMs: 60_000, giveUpAfter: 5 };

export type RestartDecision = { action: 'restart'; delayMs: number } | { action: 'give_up'; failures: number };

export class RestartBackoff {
  /** worker deaths in a row, none of them after a stable run: decides the wait */
  deaths = 0;
  /** workers in a row that died before they listened: decides giving up */
  startFailures = 0;

  constructor(private readonly settings: BackoffSettings = RESTART_BACKOFF) {}

  /**
   * A worker died. `servedMs`: how long it had been listening (undefined: it
   * never did); `serving`: workers still listening.
   */
  workerDied(servedMs: number | undefined, serving: number): RestartDecision {
    if (servedMs !== undefined && servedMs >= this.settings.stableMs) this.deaths = 0;
    this.deaths += 1;
    // (a worker that cannot start while another serves is no sign that none can)
    if (servedMs === undefined && serving === 0) this.startFailures += 1;
    if (servedMs === undefined && serving === 0 && this.startFailures >= this.settings.giveUpAfter) {
      return { action: 'give_up', failures: this.startFailures };
    }
    const max = serving === 0 ? this.settings.firstDelayMs : this.settings.maxDelayMs;
    const delayMs = this.deaths === 1 ? 0 : Math.min(max, this.settings.firstDelayMs * 2 ** (this.deaths - 2));
    return { action: 'restart', delayMs };
  }

  /** A worker listens: workers can start. */
  workerListening(): void {
    this.startFailures = 0;
  }

  /** A worker has been listening for stableMs: the next death is a first one again. */
  workerStable(): void {
    this.deaths = 0;
  }
}
