// Where the relay's own lines go (esets_smtp(1) LOGGING): with
// syslog_facility = none, Haraka's log; otherwise the system's syslog, for
// the classes syslog_class lists (error, warning, summary, info, debug).
//
// Node cannot write the /dev/log datagram socket without a native addon, so
// the lines go through util-linux `logger`: one long-lived
// `logger -p FACILITY.LEVEL` per priority (and socket), started on first use.
// The priority is an argument we chose, never read from the text (no
// `--prio-prefix`: a client's `<0>` once became a user.emerg record), and
// every line is already escaped and bounded (lib/syslog.ts), so one line is
// one record.
//
// Plugins write with relayLog(plugin, connection?, config?).error(text) etc.:
// the configuration in force when they pass none (relay_config tells this
// module which that is: setConfigInForce).

import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import type { EsetsConfig, SyslogClass, SyslogFacility } from '../../lib/esets_options';
import {
  debugLine, errorLine, Field, infoLine, isLogged, isWritten, LogLine, loggerPriority, Severity, warningLine,
} from '../../lib/syslog';
import type { Connection, Logger, Plugin } from './haraka';
import { harakaInUse } from '../../io/haraka_version';

type Facility = Exclude<SyslogFacility, 'none'>;

/** the configuration in force, as relay_config last loaded it (undefined: none loaded yet) */
let configInForce: () => EsetsConfig | undefined = () => undefined;

/** Called by relay_config, which owns the configuration in force (it writes its own lines here). */
export function setConfigInForce(current: () => EsetsConfig | undefined): void {
  configInForce = current;
}

// at most 5 children (one per severity) for the facility and socket in use
const loggers = new Map<string, ChildProcess>();
let loggersFor = '';

/** Ends the logger processes: their stdin closed, each writes what it has and exits. */
function endLoggers(): void {
  for (const child of loggers.values()) child.stdin?.end();
  loggers.clear();
  loggersFor = '';
}

// a process that ends takes its loggers with it (their stdin would close anyway; ended here, not left to chance)
process.once('exit', endLoggers);

/** Where a line belongs: a client's session, or only its trace id (a line written where no connection is at hand). */
export type LogContext = Connection | { uuid: string; remote?: undefined };

export function writeLog(plugin: Plugin, connection: LogContext | undefined, config: EsetsConfig, line: LogLine): void {
  if (config.syslog_facility === 'none') {
    // a live edit set syslog_facility back to none (the reload's own line comes here): the loggers have no more use
    if (loggers.size && configInForce()?.syslog_facility === 'none') endLoggers();
    haraka(plugin, connection, line);
    return;
  }
  if (!isLogged(line, config.syslog_class)) return;
  const child = loggerProcess(plugin, config.syslog_facility, line, config.syslog_socket);
  child.stdin?.write(`${line.text}\n`);
}

/**
 * Haraka's level for each priority. INFO lines (a reload, the status listener:
 * rare, and what an operator looks for) go at NOTICE, the level the shipped
 * log.ini shows, as they always did; DEBUG lines need log.ini level=debug.
 */
const HARAKA_METHOD: Readonly<Record<Severity, keyof Logger>> = {
  err: 'logerror', warning: 'logwarn', notice: 'lognotice', info: 'lognotice', debug: 'logdebug',
};

function haraka(plugin: Plugin, connection: LogContext | undefined, line: LogLine): void {
  const method = HARAKA_METHOD[line.severity];
  if (connection?.remote) connection[method](plugin, line.text);
  // Haraka's logger takes a plain object's uuid as the record's id (the brackets, or the JSON field)
  else if (connection) plugin[method]({ uuid: connection.uuid }, line.text);
  else plugin[method](line.text);
}

export interface RelayLog {
  error(text: string): void;
  warning(text: string): void;
  info(text: string): void;
  /** `fields` runs only when debug lines are written: nothing is built otherwise */
  debug(fields: () => string | readonly Field[]): void;
  /** whether lines of this class are written anywhere (to skip work for them) */
  wants(logClass: SyslogClass): boolean;
}

/**
 * The plugins' log: `config` is the one in force when not given (read at each
 * line: a reload changes facility and classes). Never throws: with no usable
 * configuration (or a failing write) the line goes to Haraka's log.
 */
export function relayLog(plugin: Plugin, connection?: LogContext, config?: EsetsConfig): RelayLog {
  // none loaded (or the first load failed): no syslog settings to go by, Haraka's log
  const configNow = (): EsetsConfig | undefined => config ?? configInForce();
  const write = (line: LogLine): void => {
    const c = configNow();
    if (c) {
      try {
        return writeLog(plugin, connection, c, line);
      } catch {
        // Haraka's log, below
      }
    }
    haraka(plugin, connection, line);
  };
  const wants = (logClass: SyslogClass): boolean => {
    const c = configNow();
    if (c && !isWritten(c.syslog_facility, c.syslog_class, logClass)) return false;
    return logClass !== 'debug' || !c || c.syslog_facility !== 'none' || harakaLogsDebug();
  };
  return {
    error: (text) => write(errorLine(text)),
    warning: (text) => write(warningLine(text)),
    info: (text) => write(infoLine(text)),
    debug: (fields) => {
      if (wants('debug')) write(debugLine(fields()));
    },
    wants,
  };
}

interface HarakaLogger {
  would_log(level: number): boolean;
  LOGDEBUG: number;
}

let harakaLogger: HarakaLogger | null | undefined;

/** Haraka's own level (log.ini) lets DEBUG through; true where Haraka's logger cannot be loaded. */
function harakaLogsDebug(): boolean {
  if (harakaLogger === undefined) {
    try {
      // the running Haraka's logger (a global `haraka -c` beside a Haraka in the folder: the one that logs)
      const haraka = harakaInUse();
      harakaLogger = (haraka ? require(path.join(haraka.path, 'logger')) : require('Haraka/logger')) as HarakaLogger;
    } catch {
      harakaLogger = null;
    }
  }
  return harakaLogger ? harakaLogger.would_log(harakaLogger.LOGDEBUG) : true;
}

function loggerProcess(plugin: Plugin, facility: Facility, line: LogLine, socket: string): ChildProcess {
  // a reload that changes the facility or the socket ends the children of the old one
  const target = `${facility}\0${socket}`;
  if (target !== loggersFor) {
    endLoggers();
    loggersFor = target;
  }
  const priority = loggerPriority(facility, line.severity);
  const running = loggers.get(priority);
  if (running && running.exitCode === null && running.signalCode === null) return running;

  const child = spawn('logger', ['-p', priority, '-t', 'esets_smtp', `--id=${process.pid}`, '-u', socket], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  // logger's own complaints stay in Haraka's log: sent to syslog they could complain again (a loop)
  child.stderr?.on('data', (d: Buffer) => plugin.logerror(`syslog (${socket}, ${priority}): ${d.toString().trim()}`));
  child.on('error', (err) => plugin.logerror(`syslog: cannot run logger: ${err.message}`));
  child.stdin?.on('error', () => undefined);
  child.unref();
  loggers.set(priority, child);
  return child;
}
