// The manual's LOGGING: which class a line belongs to, whether syslog_class
// lets it through, and its syslog priority (facility * 8 + severity).

import type { SyslogClass, SyslogFacility } from './esets_options';

export type Severity = 'err' | 'warning' | 'notice' | 'info' | 'debug';

const SEVERITY: Record<Severity, number> = { err: 3, warning: 4, notice: 5, info: 6, debug: 7 };
const FACILITY: Record<Exclude<SyslogFacility, 'none'>, number> = {
  daemon: 3, mail: 2, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

export interface LogLine {
  logClass: SyslogClass;
  severity: Severity;
  text: string;
}

/** A summary line: NOTICE when the message was accepted, WARNING for any other action. */
export function summaryLine(accepted: boolean, text: string): LogLine {
  return { logClass: 'summary', severity: accepted ? 'notice' : 'warning', text };
}

export function errorLine(text: string): LogLine {
  return { logClass: 'error', severity: 'err', text };
}

export function isLogged(line: LogLine, classes: readonly SyslogClass[]): boolean {
  return classes.includes(line.logClass);
}

export function syslogPriority(facility: Exclude<SyslogFacility, 'none'>, severity: Severity): number {
  return FACILITY[facility] * 8 + SEVERITY[severity];
}

/** One line for `logger --prio-prefix`: "<PRI>text", with no line breaks inside. */
export function priorityPrefixed(facility: Exclude<SyslogFacility, 'none'>, line: LogLine): string {
  return `<${syslogPriority(facility, line.severity)}>${line.text.replace(/[\r\n]+/g, ' ')}\n`;
}
