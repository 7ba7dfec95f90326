// Haraka's log records as the launcher writes them (its log hook,
// plugins/shared/launcher_log): Haraka's per-session NOTICE lines (connect,
// HELO, sender, recipient, message, queue, disconnect: six or seven a message)
// are INFO, so the default level (log.ini: one level for everything) shows
// one summary line per message; and a JSON record with a timestamp keeps it
// inside the record (Haraka writes it before the JSON, which is then no longer
// JSON). Under `haraka -c` none of this applies: the operator's Haraka decides.

/** Haraka's log formats (logger.formats) */
export type LogFormat = 'DEFAULT' | 'LOGFMT' | 'JSON';

/** A record's fields as the logger made them (only those read here). */
interface RecordFields {
  level?: unknown;
  uuid?: unknown;
  origin?: unknown;
}

const DEFAULT_SESSION_NOTICE = /^\[NOTICE\] \[(?!-\])[^\]]+\] \[core\] /;
const LOGFMT_SESSION_NOTICE = /^level=NOTICE uuid=(?!- )\S+ origin=core /;

function jsonFields(data: string): RecordFields | undefined {
  try {
    const value: unknown = JSON.parse(data);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as RecordFields : undefined;
  } catch {
    return undefined;
  }
}

/** A NOTICE line Haraka's core writes about a session (it has the session's id): not the manager's, not a plugin's. */
export function isSessionNotice(data: string, format: LogFormat): boolean {
  if (format === 'JSON') {
    const r = jsonFields(data);
    return r?.level === 'NOTICE' && r.origin === 'core' && typeof r.uuid === 'string' && r.uuid !== '-';
  }
  return (format === 'LOGFMT' ? LOGFMT_SESSION_NOTICE : DEFAULT_SESSION_NOTICE).test(data);
}

/** The same record at INFO (the level word is the record's first field in every format). */
export function asInfo(data: string, format: LogFormat): string {
  if (format === 'JSON') {
    const r = jsonFields(data);
    return r ? JSON.stringify({ ...r, level: 'INFO' }) : data;
  }
  return format === 'LOGFMT' ? data.replace(/^level=NOTICE /, 'level=INFO ') : data.replace(/^\[NOTICE\]/, '[INFO]');
}

/**
 * A record of the JSON format as valid JSON: its time as a field (first, as the
 * other formats put it first; none when timestamps are off), and a line the
 * logger wrote as plain text (`loglevel: NOTICE`) made a record of its level.
 */
export function jsonRecord(data: string, level: string, isoTime?: string): string {
  const r = jsonFields(data) ?? { level, uuid: '-', origin: 'core', message: data };
  return JSON.stringify(isoTime ? { timestamp: isoTime, ...r } : r);
}
