// Where the relay's own lines go (esets_smtp(1) LOGGING): with
// syslog_facility = none, Haraka's log; otherwise the system's syslog, through
// one long-lived `logger --prio-prefix` per process (Node has no syslog API).

import { ChildProcess, spawn } from 'node:child_process';
import type { EsetsConfig } from '../../lib/esets_options';
import { isLogged, LogLine, priorityPrefixed } from '../../lib/syslog';
import type { Connection, Logger, Plugin } from './haraka';

let syslog: { child: ChildProcess; socket: string } | undefined;

export function writeLog(plugin: Plugin, connection: Connection | undefined, config: EsetsConfig, line: LogLine): void {
  if (config.syslog_facility === 'none') {
    haraka(plugin, connection, line);
    return;
  }
  if (!isLogged(line, config.syslog_class)) return;
  const child = syslogProcess(plugin, config.syslog_socket);
  child.stdin?.write(priorityPrefixed(config.syslog_facility, line));
}

function haraka(plugin: Plugin, connection: Connection | undefined, line: LogLine): void {
  const method: keyof Logger = {
    err: 'logerror', warning: 'logwarn', notice: 'lognotice', info: 'loginfo', debug: 'logdebug',
  }[line.severity] as keyof Logger;
  if (connection) connection[method](plugin, line.text);
  else plugin[method](line.text);
}

function syslogProcess(plugin: Plugin, socket: string): ChildProcess {
  if (syslog && syslog.socket === socket && syslog.child.exitCode === null) return syslog.child;
  const child = spawn('logger', ['--prio-prefix', '-t', 'esets_smtp', `--id=${process.pid}`, '-u', socket], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => plugin.logerror(`syslog (${socket}): ${d.toString().trim()}`));
  child.on('error', (err) => plugin.logerror(`syslog: cannot run logger: ${err.message}`));
  child.stdin?.on('error', () => undefined);
  child.unref();
  syslog = { child, socket };
  return child;
}
