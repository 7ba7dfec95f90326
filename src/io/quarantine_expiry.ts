// Quarantine expiry in the relay's manager: at start, then every hour, the
// entries quarantine_max_age and quarantine_max_size no longer keep are
// removed (oldest first; `esets_quar expire` does the same by hand). The
// settings are read at each run: a reload changes them.

import { expiredEntries, ExpiryLimits } from '../lib/quarantine';
import { EntryInUse, FolderQuarantineStore } from './quarantine_store';

export const EXPIRY_EVERY_MS = 60 * 60 * 1000;

export interface ExpirySettings {
  /** the folder, or undefined when no quarantine is in use (nothing to do) */
  dir?: string;
  limits: ExpiryLimits;
}

export interface ExpiryReport {
  dir: string;
  expired: { id: string; why: 'age' | 'size' }[];
}

/** One run: what was removed (nothing when the folder does not exist yet). */
export function expireOnce(settings: ExpirySettings, now = new Date()): ExpiryReport | undefined {
  if (!settings.dir) return undefined;
  const store = new FolderQuarantineStore(settings.dir);
  // a message half-written by a killed worker: its client was never answered and sends it again
  store.sweep();
  const expired = expiredEntries(store.list(), now, settings.limits).filter((e) => {
    try {
      return store.remove(e.id, 'expired');
    } catch (err) {
      // being released: removed at a later run
      if (err instanceof EntryInUse) return false;
      throw err;
    }
  });
  return { dir: settings.dir, expired };
}

/** Runs expireOnce now and every hour; `report` hears each run that removed something, `fail` each that threw. */
export function startQuarantineExpiry(
  settings: () => ExpirySettings, report: (r: ExpiryReport) => void, fail: (err: Error) => void,
): { stop(): void } {
  const run = (): void => {
    try {
      const r = expireOnce(settings());
      if (r?.expired.length) report(r);
    } catch (err) {
      fail(err as Error);
    }
  };
  run();
  const timer = setInterval(run, EXPIRY_EVERY_MS).unref();
  return { stop: () => clearInterval(timer) };
}
