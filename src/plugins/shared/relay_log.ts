// Where the relay's own lines go (esets_smtp(1) LOGGING): with
// syslog_facility = none, Haraka's log; otherwise the system's syslog.
//
// Node cannot write the /dev/log datagram socket without a native addon, so
// the lines go through util-linux `logger`: one long-lived
// `logger -p FACILITY.LEVEL` per priority (and socket), started on first use.
// The priority is an argument we chose, never read from the text (no
// `--prio-prefix`: a client's `<0>` once became a user.emerg record), and
// every line is already escaped and bounded (lib/syslog.ts), so one line is
// one record.

import { ChildProcess, spawn } from 'node:child_process';
import type { EsetsConfig, SyslogFacility } from '../../lib/esets_options';
import { isLogged, LogLine, loggerPriority } from '../../lib/syslog';
import type { Connection, Logger, Plugin } from './haraka';

type Facility = Exclude<SyslogFacility, 'none'>;

// at most 5 children (one per severity) for the facility and socket in use
const loggers = new Map<string, ChildProcess>();
let loggersFor = '';

export function writeLog(plugin: Plugin, connection: Connection | undefined, config: EsetsConfig, line: LogLine): void {
  if (config.syslog_facility === 'none') {
    haraka(plugin, connection, line);
    return;
  }
  if (!isLogged(line, config.syslog_class)) return;
  const child = loggerProcess(plugin, config.syslog_facility, line, config.syslog_socket);
  child.stdin?.write(`${line.text}\n`);
}

function haraka(plugin: Plugin, connection: Connection | undefined, line: LogLine): void {
  const method: keyof Logger = {
    err: 'logerror', warning: 'logwarn', notice: 'lognotice', info: 'loginfo', debug: 'logdebug',
  }[line.severity] as keyof Logger;
  if (connection) connection[method](plugin, line.text);
  else plugin[method](line.text);
}

function loggerProcess(plugin: Plugin, facility: Facility, line: LogLine, socket: string): ChildProcess {
  // a reload that changes the facility or the socket ends the children of the old one
  const target = `${facility}\0${socket}`;
  if (target !== loggersFor) {
    for (const child of loggers.values()) child.stdin?.end();
    loggers.clear();
    loggersFor = target;
  }
  const priority = loggerPriority(facility, line.severity);
  const running = loggers.get(priority);
  if (running && running.exitCode === null && running.signalCode === null) return running;

  const child = spawn('logger', ['-p', priority, '-t', 'esets_smtp', `--id=${process.pid}`, '-u', socket], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => plugin.logerror(`syslog (${socket}, ${priority}): ${d.toString().trim()}`));
  child.on('error', (err) => plugin.logerror(`syslog: cannot run logger: ${err.message}`));
  child.stdin?.on('error', () => undefined);
  child.unref();
  loggers.set(priority, child);
  return child;
}
