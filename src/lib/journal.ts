// Lines for the systemd journal: with stdout connected to journald
// (JOURNAL_STREAM set), a line that starts with `<N>` is logged at syslog
// priority N. Haraka writes each record with one write, its level word
// first (after an optional timestamp); every line of that write gets the
// record's priority, so text inside a record (a client's) never chooses one.

const PRIORITY: Record<string, number> = {
  EMERG: 0, ALERT: 1, CRIT: 2, ERROR: 3, WARN: 4, NOTICE: 5, INFO: 6, DEBUG: 7, PROTOCOL: 7, DATA: 7,
};
/** what carries no level word (start-up lines of modules) */
const DEFAULT_PRIORITY = 6;

export function journalRecord(text: string, fallback = DEFAULT_PRIORITY): string {
  // DEFAULT `[LEVEL]`, LOGFMT `level=LEVEL`, JSON `{"timestamp":…,"level":"LEVEL"` (the launcher's log hook puts the time first)
  const level = /^(?:\d{4}-\d\d-\d\dT[\d:.]+Z )?(?:\[([A-Z]+)\]|level=([A-Z]+) |\{(?:"timestamp":"[^"\\]*",)?"level":"([A-Z]+)")/
    .exec(text)?.slice(1).find((l) => l !== undefined);
  const priority = level !== undefined && PRIORITY[level] !== undefined ? PRIORITY[level] : fallback;
  const lines = text.split('\n');
  return lines.map((line, i) => (i === lines.length - 1 && line === '' ? '' : `<${priority}>${line}`)).join('\n');
}
