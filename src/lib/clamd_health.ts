// Which clamd daemons of daemon_sock_path to try, and in what order: one that
// failed (refused, died, or hung: no PONG) is skipped for a back-off period,
// then tried again. INSTREAM says nothing until the verdict, so a slow scan
// and a hung daemon look alike without a PING on the side (clamd_client).

import { CLAMD_BACKOFF_MS } from './timeout_budget';

export class ClamdHealth {
  private readonly downUntil = new Map<string, number>();

  /** The addresses in their configured order, the ones in back-off last (still tried when nothing else is left). */
  order(addresses: readonly string[], now = Date.now()): string[] {
    const up = addresses.filter((a) => (this.downUntil.get(a) ?? 0) <= now);
    return [...up, ...addresses.filter((a) => !up.includes(a))];
  }

  /** Skips `address` for the back-off period; true when it was not skipped already (a new failure to report). */
  markDown(address: string, now = Date.now(), backoffMs = CLAMD_BACKOFF_MS): boolean {
    const fresh = !this.isDown(address, now);
    this.downUntil.set(address, now + backoffMs);
    return fresh;
  }

  markUp(address: string): void {
    this.downUntil.delete(address);
  }

  isDown(address: string, now = Date.now()): boolean {
    return (this.downUntil.get(address) ?? 0) > now;
  }
}
