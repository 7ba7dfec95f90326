// The launcher's log hook (Haraka's `log` hook, run for every record in the
// manager and every worker): log.ini holds one level, so the launcher itself
// moves Haraka's per-session NOTICE lines to INFO (the default level then
// shows about one line per message: the relay's summary), and keeps JSON
// records JSON (lib/log_records). Registered by esets_policy under the
// launcher only: under `haraka -c` the operator's Haraka logs as it always did.

import constants from 'haraka-constants';
import { asInfo, isSessionNotice, jsonRecord, LogFormat } from '../../lib/log_records';
import type { Next } from './haraka';

/** Haraka's logger, as the log hook gets it */
export interface HarakaLogger {
  format: LogFormat;
  timestamps: boolean;
  LOGINFO: number;
  levels: Readonly<Record<string, number>>;
  would_log(level: number): boolean;
}

/** What the logger hands the hook: `data` is what it writes after `next()` (a timestamp before it, if on). */
export interface LogItem {
  level: string;
  data: string;
}

export function launcherLogHook(next: Next, logger: HarakaLogger, item: LogItem): void {
  let { data } = item;
  // the logger's own start lines (`loglevel: NOTICE`, `log format: …`) skip its level check: INFO, held to the level too
  const level = logger.levels[item.level];
  if (level !== undefined && !logger.would_log(level)) return next(constants.ok);
  if (item.level === 'NOTICE' && isSessionNotice(data, logger.format)) {
    // below the level in force: written nowhere (OK: the logger writes nothing)
    if (!logger.would_log(logger.LOGINFO)) return next(constants.ok);
    data = asInfo(data, logger.format);
    item.level = 'INFO';
  }
  if (logger.format === 'JSON') {
    // Haraka would write its timestamp before the record: the time goes inside, and the record is written here
    process.stdout.write(`${jsonRecord(data, item.level, logger.timestamps ? new Date().toISOString() : undefined)}\n`);
    return next(constants.ok);
  }
  item.data = data;
  next();
}
