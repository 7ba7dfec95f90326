#!/usr/bin/env node
// esets_smtp: reads esets.cfg and the command line, derives Haraka's settings
// into a private copy of config/, and runs Haraka on it in this process.
// Signals as esets_smtp(1): TERM finishes the sessions in progress and exits,
// USR1 exits at once; HUP reads the configuration again (io/hangup). Start-up
// failures exit non-zero with the reason: 78 for the configuration, 1 for the
// rest (a listener that cannot bind, no worker that can start).

import cluster from 'node:cluster';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import { helpText, parseCommandLine, DEFAULT_CONFIG_PATH } from '../lib/command_line';
import { formatDiagnostic, hasErrors, inFileOrder, printable } from '../lib/diagnostics';
import { deriveHarakaSettings, formatListen, HarakaSettings } from '../lib/haraka_settings';
import { formatIni, mergeIni, parseIni } from '../lib/ini';
import { parseHostPort } from '../lib/esets_options';
import { StopTiming, stopTiming } from '../lib/timeout_budget';
import { quarantineDir } from '../lib/quarantine';
import { loadConfigFiles, RUNTIME_ENV, WARNED_ENV } from '../io/config_files';
import { processDir } from '../io/process_dirs';
import { handleStopSignals, stopNow } from '../io/stop_signals';
import { installHangup, isHangupListener } from '../io/hangup';
import { journalOutput } from './journal_output';
import { LOG_FILE_ENV, logToFile, prepareLogFile } from './log_file';
import { superviseWorkers } from './worker_supervisor';
import { harakaInUse, harakaVersionReport, noHarakaFound } from '../io/haraka_version';
import {
  checkHarakaDir, checkLauncher, launcherRules, printCheck, quarantineEnabled, tmpdirProblem, workerFiles, workerUser,
} from './config_check';
import { canWrite, dropToWorkerUser, shareWith, WORKER_USER_ENV, WorkerUser } from './worker_user';

const PROJECT_DIR = path.resolve(__dirname, '..', '..', '..');
const DRAIN_ENV = 'ESETS_RELAY_DRAIN_MS';
/**
 * The exit status of a start refused for its configuration (sysexits' EX_CONFIG,
 * systemd's "CONFIG"): the units do not restart it (RestartPreventExitStatus=78),
 * as trying again cannot help until the files are fixed. Other refusals (a port
 * in use, TMPDIR, no worker started) exit 1 and are tried again.
 */
const EXIT_CONFIG = 78;
const GRACE_ENV = 'ESETS_RELAY_GRACE_MS';
const { version } = require(path.join(PROJECT_DIR, 'package.json')) as { version: string };
/** the clamd.conf snippet of every setting the relay needs, named in clamd.conf warnings */
const CLAMD_SNIPPET = path.join(PROJECT_DIR, 'config', 'clamd-esets-relay.conf');

async function main(): Promise<void> {
  if (cluster.isWorker && process.env[RUNTIME_ENV]) {
    dropToWorkerUser();
    try {
      if (process.env[LOG_FILE_ENV]) logToFile(process.env[LOG_FILE_ENV]);
      else journalOutput();
    } catch (err) {
      process.stderr.write(`esets_smtp worker: log_file ${process.env[LOG_FILE_ENV]}: ${(err as Error).message}; logging to stderr\n`);
    }
    installHangup();
    handleStopSignals({ drainMs: Number(process.env[DRAIN_ENV]) || 30_000, graceMs: Number(process.env[GRACE_ENV]) || 0 });
    startHaraka(process.env[RUNTIME_ENV]!);
    return;
  }

  const cli = parseCommandLine(process.argv.slice(2));
  if (cli.command === 'help') {
    process.stdout.write(helpText('esets_smtp'));
    return;
  }
  if (cli.command === 'version') {
    const haraka = harakaInUse();
    process.stdout.write(`esets_smtp (esets-relay) ${version}, ${haraka ? `Haraka ${haraka.version}` : 'no Haraka found'}\n`);
    return;
  }
  if (hasErrors(cli.diagnostics)) fail(cli.diagnostics.map(formatDiagnostic), 2);
  if (cli.command === 'run' && !harakaInUse()) {
    // a peer dependency: installed beside the package, not with it
    fail([`esets_smtp: error: ${noHarakaFound()}`, 'esets_smtp: not started'], 1);
  }

  const configFile = cli.configPath === DEFAULT_CONFIG_PATH
    ? path.join(PROJECT_DIR, DEFAULT_CONFIG_PATH)
    : path.resolve(cli.configPath);
  const harakaConfig = cli.harakaConfigDir ? path.resolve(cli.harakaConfigDir) : path.join(PROJECT_DIR, 'config');
  if (cli.command === 'check') {
    // read-only: nothing is bound, written or started (docs/configuration.md "Checking a configuration")
    const result = cli.harakaDir
      ? checkHarakaDir(path.resolve(cli.harakaDir), CLAMD_SNIPPET)
      : checkLauncher(configFile, cli.overrides, harakaConfig, CLAMD_SNIPPET);
    process.exit(printCheck(result, (text) => process.stderr.write(text)));
  }
  // loadConfigFiles turns any exception into an error; what follows gets the same: a message, not a stack
  let runtime: string;
  let stop: StopTiming;
  let listen: { host: string; port: number };
  let statusListen: { host: string; port: number } | undefined;
  let logFile: string | undefined;
  let logLine: number | undefined;
  let logOwner: WorkerUser | undefined;
  try {
    const { loaded, diagnostics } = loadConfigFiles(configFile, cli.overrides);
    const settings = loaded ? deriveHarakaSettings(loaded.config, configFile, cli.overrides, loaded.lines) : undefined;
    diagnostics.push(...(settings?.diagnostics ?? []));
    if (loaded) diagnostics.push(...launcherRules(loaded, harakaConfig));
    // in the order of the files' lines: a broken section header is said before what follows it
    if (!loaded || !settings || hasErrors(diagnostics)) {
      fail([...inFileOrder(diagnostics).map(formatDiagnostic), 'esets_smtp: not started'], EXIT_CONFIG);
    }
    for (const d of inFileOrder(diagnostics)) process.stderr.write(`${formatDiagnostic(d)}\n`);
    process.env[WARNED_ENV] = '1';
    // before the run folder is made: a refusal leaves nothing behind, and says what is wrong (not a mkdtemp error)
    const user = workerUser(loaded.config.daemon_user, workerFiles(loaded));
    if (typeof user === 'string') {
      const at = { severity: 'error', file: configFile, line: loaded.lines.daemon_user, message: user } as const;
      fail([formatDiagnostic(at), 'esets_smtp: not started'], EXIT_CONFIG);
    }
    if (user && 'message' in user) fail([formatDiagnostic(user), 'esets_smtp: not started'], EXIT_CONFIG);
    const tmp = tmpdirProblem(user, { file: configFile, line: loaded.lines.daemon_user });
    if (tmp) fail([formatDiagnostic(tmp), 'esets_smtp: not started'], 1);
    runtime = writeRuntimeDir(harakaConfig, settings);
    if (user) {
      shareWith(user, runtime);
      process.env[WORKER_USER_ENV] = `${user.name}:${user.uid}:${user.gid}`;
    }
    if (quarantineEnabled(loaded)) prepareQuarantine(quarantineDir(loaded.config, configFile), user);
    logFile = loaded.config.log_file ? path.resolve(path.dirname(configFile), loaded.config.log_file) : undefined;
    logLine = loaded.lines.log_file;
    logOwner = user;
    stop = stopTiming(loaded.config);
    listen = { host: loaded.config.listen_addr!, port: loaded.config.listen_port! };
    statusListen = loaded.config.http_listen ? parseHostPort(loaded.config.http_listen) : undefined;
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    // the run folder (mkdtemp in TMPDIR) failing where tmpdirProblem saw none (ENOSPC, EDQUOT): not esets.cfg's fault
    if ((err as NodeJS.ErrnoException).syscall === 'mkdtemp') {
      fail([`${os.tmpdir()}: error: cannot make the run folder there (TMPDIR): ${e.message}`, 'esets_smtp: not started'], 1);
    }
    fail([`${configFile}: error: cannot start: ${e.name}: ${e.message}`, 'esets_smtp: not started'], EXIT_CONFIG);
  }
  // the workers' listener is bound by this process (cluster): a port taken or refused is said here, once
  const bindError = await tryListen(listen.host, listen.port);
  if (bindError) fail([`${configFile}: error: ${bindError} (listen_addr, listen_port in [smtp])`, 'esets_smtp: not started'], 1);
  const statusError = statusListen && await tryListen(statusListen.host, statusListen.port);
  if (statusError) fail([`${configFile}: error: ${statusError} (http_listen in [smtp])`, 'esets_smtp: not started'], 1);
  if (logFile) {
    // checked while errors still reach the terminal
    try {
      prepareLogFile(logFile, logOwner);
    } catch (err) {
      const message = `log_file ${logFile}: ${(err as Error).message}`;
      const why = { severity: 'error', file: configFile, line: logLine, message } as const;
      fail([formatDiagnostic(why), 'esets_smtp: not started'], EXIT_CONFIG);
    }
    if (logOwner && !canWrite(logOwner, logFile)) {
      fail([
        `${configFile}: error: daemon_user = '${logOwner.name}' cannot write log_file ${logFile} (e.g. chown ${logOwner.name} ${logFile})`,
        'esets_smtp: not started',
      ], EXIT_CONFIG);
    }
    logToFile(logFile, logOwner);
    process.env[LOG_FILE_ENV] = logFile;
  } else {
    journalOutput();
  }
  // HUP: the configuration read again (the plugins register that), log_file reopened, the workers told
  installHangup();
  process.env[RUNTIME_ENV] = runtime;
  process.env[DRAIN_ENV] = String(stop.drainMs);
  process.env[GRACE_ENV] = String(stop.graceMs);
  const supervisor = superviseWorkers(harakaLog(), () => stopNow(1));
  handleStopSignals(stop, supervisor);
  startHaraka(runtime);
  // through Haraka's logger, once it has its configuration: to log_file or the journal, with a priority
  sayHarakaVersion(harakaLog());
}

/**
 * The quarantine folder, made for the workers' user when the manager is root
 * (systemd's StateDirectory is root's then): they write it, nobody else reads
 * it. One that cannot be made is said, not fatal: each message it should keep
 * is then deferred, with the reason in the log.
 */
function prepareQuarantine(dir: string, user: WorkerUser | undefined): void {
  try {
    if (!fs.existsSync(dir)) {
      // the parents as any folder (0755): made 0700 for root, the workers could not pass them
      fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 });
      fs.mkdirSync(dir, { mode: 0o700 });
      // given through the folder itself, never through a link put in its place meanwhile
      const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
      try {
        if (user) fs.fchownSync(fd, user.uid, user.gid);
      } finally {
        fs.closeSync(fd);
      }
    }
  } catch (err) {
    process.stderr.write(`esets_smtp: warning: daemon_quarantine ${printable(dir)}: ${printable((err as Error).message)}: `
      + 'messages to quarantine are deferred until it can be written\n');
  }
}

/** One start line naming the Haraka in use, and a warning where it is not the Haraka 3 whose internals the relay wraps. */
function sayHarakaVersion(log: StartLog): void {
  const report = harakaVersionReport(harakaInUse());
  log.notice(`${report.line} in use`);
  if (report.warning) log.warn(report.warning);
}

/** Why `host:port` cannot be listened on, in words; undefined when it can. */
function tryListen(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    const where = formatListen(host, port);
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why: Record<string, string> = {
        EADDRINUSE: 'the address is in use (another program listens there)',
        EACCES: 'permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE)',
        EADDRNOTAVAIL: 'no such address on this machine',
      };
      resolve(`cannot listen on ${where}: ${why[err.code ?? ''] ?? err.message}`);
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** Haraka's logger, for the manager's own lines (loaded once Haraka runs). */
interface StartLog {
  notice(text: string): void;
  warn(text: string): void;
  error(text: string): void;
}

function harakaLog(): StartLog {
  const logger = (): { lognotice(t: string): void; logwarn(t: string): void; logerror(t: string): void } => require('Haraka/logger');
  return {
    notice: (text) => logger().lognotice(`[esets_smtp] ${text}`),
    warn: (text) => logger().logwarn(`[esets_smtp] ${text}`),
    error: (text) => logger().logerror(`[esets_smtp] ${text}`),
  };
}

function fail(lines: string[], code: number): never {
  // a line may quote what a file or the command line holds (daemon_user, a path): never raw to the terminal
  process.stderr.write(`${lines.map(printable).join('\n')}\n`);
  process.exit(code);
}

/** A Haraka directory of our own (the private run folder): config/ copied with the derived files written over it. */
function writeRuntimeDir(harakaConfig: string, settings: HarakaSettings): string {
  const runtime = processDir('run');
  const configDir = path.join(runtime, 'config');
  fs.cpSync(harakaConfig, configDir, { recursive: true });
  for (const [name, changes] of Object.entries(settings.iniFiles)) {
    const file = path.join(configDir, name);
    const base = fs.existsSync(file) ? parseIni(fs.readFileSync(file, 'utf8')) : {};
    fs.writeFileSync(file, formatIni(mergeIni(base, changes)));
  }
  // plugins/<name>/package.json points into dist/ by a relative path
  for (const dir of ['plugins', 'dist']) fs.symlinkSync(path.join(PROJECT_DIR, dir), path.join(runtime, dir));
  // Haraka's stock plugins (haraka-plugin-NAME) beside the Haraka in use: the package's own node_modules in a
  // clone, the Haraka folder's where the package is installed (there it has none)
  fs.symlinkSync(path.dirname(path.dirname(require.resolve('Haraka/package.json'))), path.join(runtime, 'node_modules'));
  return runtime;
}

/**
 * V8's young generation grows to tens of MB while a large message streams
 * through; a 2 MB semi-space keeps a worker's memory growth for a 50 MB
 * message near 50 MB (BENCHMARKS.md) at no measurable cost for small ones.
 */
const WORKER_EXEC_ARGV = ['--max-semi-space-size=2'];

/** what haraka-email-message prints when the optional native iconv addon is not installed */
const ICONV_NOTICE = 'Using iconv-lite only. To support rare encodings: npm install iconv';

/**
 * haraka-email-message (Haraka's message parser) prints ICONV_NOTICE with
 * console.log, unformatted, in every process: its logger fallback, because
 * the Haraka logger it looks for (`../logger`) is not in its package. The
 * relay converts no charsets (the message passes byte for byte; iconv-lite
 * covers what Haraka decodes of headers), so the line says nothing to an
 * operator: the module is loaded here, before Haraka, with that one line held back.
 */
function loadMessageModuleQuietly(): void {
  const module = require.resolve('haraka-email-message', { paths: [path.dirname(require.resolve('Haraka/haraka.js'))] });
  const log = console.log;
  console.log = (...args: unknown[]): void => {
    if (!(args.length === 1 && args[0] === ICONV_NOTICE)) log(...args);
  };
  try {
    require(module);
  } finally {
    console.log = log;
  }
}

/**
 * Modules Haraka loads print with console.log (haraka-tld: `loaded TLD files:
 * …`, in every process): unformatted, they were the only lines outside Haraka's
 * format (JSON no longer parsed line by line). They go to Haraka's log at INFO.
 */
function consoleToLog(): void {
  const log = (...args: unknown[]): void => {
    (require('Haraka/logger') as { loginfo(text: string): void }).loginfo(util.format(...args));
  };
  console.log = log;
  console.info = log;
}

function startHaraka(runtime: string): void {
  if (cluster.isPrimary) {
    // the kernel hands connections to the workers: with Node's default round robin the
    // manager holds an accepted connection for a worker, and one held for a worker that
    // dies hangs until the client gives up (test/e2e/processes.test.ts)
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ execArgv: [...process.execArgv, ...WORKER_EXEC_ARGV] });
  }
  process.env.HARAKA = runtime;
  const ours = { SIGTERM: process.listeners('SIGTERM'), SIGHUP: process.listeners('SIGHUP') };
  consoleToLog();
  loadMessageModuleQuietly();
  require('Haraka/haraka.js');
  // as PID 1 (a container) Haraka takes TERM for an immediate shutdown: here TERM drains (esets_smtp(1));
  // HUP flushes Haraka's outbound queue, which the relay does not use: here it reloads (io/hangup)
  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    for (const listener of process.listeners(signal) as ((...args: unknown[]) => void)[]) {
      if (!ours[signal].includes(listener) && !isHangupListener(listener)) process.off(signal, listener);
    }
  }
  // Haraka's master calls any of its functions a worker names (createServer with daemonize: files opened
  // as root); the relay's workers send it nothing, and a compromised one must not command the root manager
  if (cluster.isPrimary) {
    for (const listener of cluster.listeners('message') as ((...args: unknown[]) => void)[]) {
      if (listener.name === 'messageHandler') cluster.off('message', listener);
    }
  }
}

main().catch((err: Error) => fail([`esets_smtp: not started: ${err.stack ?? err.message}`], 1));
