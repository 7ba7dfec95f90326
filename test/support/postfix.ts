// Private Postfix instances for the tests (own config and queue directory,
// a free loopback port), run in the foreground (postfix start-fg) and stopped
// by PID: the master daemon's PID (from its pid file), which takes its
// children with it, then the start-fg wrapper. Stopping only the wrapper
// would leave the master running and listening (it is the wrapper's child,
// in a session of its own: nothing signals it when the test process ends).
// So every instance is also stopped when the test process exits without
// stop() (a `before` hook that timed out, a Promise.all that rejected, mocha
// --exit), and an instance whose test process died (SIGKILL) is removed by
// the next start.
//
// startPostfix: a real SMTP client that queues and retries: it accepts mail
// on a loopback port and relays everything to relayPort, retrying deferred
// recipients every second or two. See postfix_server.ts for Postfix as the
// mail server behind the relay.

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { canConnect, eventually, groupMembers, isRunning, stopChild } from './processes';
import { freePort } from './relay';
import { removeTempDir, tempDir } from './temp_dirs';

export interface Postfix {
  port: number;
  log(): string;
  stop(): Promise<void>;
  /**
   * Retries the deferred mail now (postqueue -f). Postfix's qmgr skips a message
   * that is still in delivery when it scans the deferred queue ("skipped, still
   * being delivered") and may then leave it for longer than the test waits.
   */
  flush(): void;
}

export interface PostfixInstance extends Postfix {
  /** the instance's folder: etc/ (main.cf, master.cf, tables), queue/, data/, maillog */
  dir: string;
  etc: string;
  /** PID of the master daemon (not of the start-fg wrapper) */
  masterPid(): number | undefined;
  /** PIDs of every running process of this instance: the wrapper, the master and the master's children */
  processes(): number[];
}

/** temp folders of the instances: esets-postfix-XXXXXX */
const DIR_PREFIX = 'esets-postfix-';
/** who started an instance: `pid starttime` of the test process (a file in the instance's folder) */
const OWNER_FILE = 'owner';

/** The start time of process `pid` (field 22 of /proc/PID/stat), telling a reused PID apart; undefined when it is gone. */
function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The running master of the instance in `dir`, from its pid file (which may outlive its process). */
function masterOf(dir: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
    return pid > 0 && fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'master' ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * SIGKILL to the master's process group: the master (`master -s` leads its
 * own session and group) and every child it started. Synchronous, for the
 * process's exit handler.
 */
function killInstance(dir: string): void {
  const pid = masterOf(dir);
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone already */ }
  }
}

/** instances of this process not stopped yet: folder → wrapper */
const running = new Map<string, ChildProcess>();
let exitHandler = false;

function track(dir: string, wrapper: ChildProcess): void {
  running.set(dir, wrapper);
  if (exitHandler) return;
  exitHandler = true;
  // the test process ends (mocha --exit) with instances its hooks never stopped: none may outlive it.
  // Before temp_dirs' own exit handler (registered earlier) removes the folders: the master's pid file is in them.
  process.prependListener('exit', () => {
    for (const [d, w] of running) {
      killInstance(d);
      if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
      removeTempDir(d);
    }
  });
}

/**
 * Instances left by test processes that died without their exit handler
 * (SIGKILL): their owner is gone, so their master is stopped and their folder
 * removed. Instances of running test processes (other runs) are left alone.
 */
function sweepOrphans(): void {
  const tmp = os.tmpdir();
  for (const name of fs.readdirSync(tmp)) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = path.join(tmp, name);
    let owner: string;
    try {
      owner = fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8').trim();
    } catch {
      continue; // not ours to judge (being created, or made by a version without owner files)
    }
    const [pid, started] = owner.split(' ');
    if (startTime(Number(pid)) === started) continue;
    killInstance(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const SERVICES = [
  'pickup unix n - n 60 1 pickup',
  'cleanup unix n - n - 0 cleanup',
  'qmgr unix n - n 300 1 qmgr',
  'rewrite unix - - n - - trivial-rewrite',
  'bounce unix - - n - 0 bounce',
  'defer unix - - n - 0 bounce',
  'trace unix - - n - 0 bounce',
  'verify unix - - n - 1 verify',
  'flush unix n - n 1000? 0 flush',
  'proxymap unix - - n - - proxymap',
  'smtp unix - - n - - smtp',
  'relay unix - - n - - smtp',
  'showq unix n - n - - showq',
  'error unix - - n - - error',
  'retry unix - - n - - error',
  'discard unix - - n - - discard',
  'local unix - n n - - local',
  'anvil unix - - n - 1 anvil',
  'scache unix - - n - 1 scache',
  'postlog unix-dgram n - n - 1 postlogd',
];

/** main.cf lines every instance needs (paths, owners, loopback only, fast retries, its own maillog) */
export function baseMainCf(dir: string, hostname: string, domain = hostname): string[] {
  return [
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    `myhostname = ${hostname}`,
    `mydomain = ${domain}`,
    'inet_interfaces = loopback-only',
    'inet_protocols = ipv4',
    'mydestination =',
    // no /etc/aliases here, no NIS: no error lines in the log
    'alias_maps =',
    'alias_database =',
    'smtp_dns_support_level = disabled',
    'smtp_tls_security_level = none',
    'queue_run_delay = 1s',
    'minimal_backoff_time = 1s',
    'maximal_backoff_time = 2s',
    `maillog_file = ${dir}/maillog`,
    `maillog_file_prefixes = ${dir}`,
  ];
}

/**
 * Starts a Postfix instance: `main(dir, etc)` gives main.cf's lines, `files`
 * extra files for etc/ (lookup tables), and smtpd listens on 127.0.0.1:port.
 * `prepare(dir, etc)` runs once etc/ is written, before Postfix starts (files
 * made by tools, e.g. a sasldb).
 */
export async function startPostfixInstance(
  main: (dir: string, etc: string) => string[],
  files: Record<string, string> = {},
  port?: number,
  prepare?: (dir: string, etc: string) => void,
): Promise<PostfixInstance> {
  sweepOrphans();
  const dir = tempDir(DIR_PREFIX);
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, OWNER_FILE), `${process.pid} ${startTime(process.pid)}\n`);
  const etc = path.join(dir, 'etc');
  fs.mkdirSync(etc);
  port ??= await freePort();
  const maillog = path.join(dir, 'maillog');
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(etc, name), text);
  fs.writeFileSync(path.join(etc, 'main.cf'), [...main(dir, etc), ''].join('\n'));
  fs.writeFileSync(path.join(etc, 'master.cf'), [`127.0.0.1:${port} inet n - n - - smtpd`, ...SERVICES, ''].join('\n'));
  prepare?.(dir, etc);
  // Postfix waits (300 ms, again and again) for a config file modified within the last second to age
  const past = new Date(Date.now() - 10_000);
  for (const name of fs.readdirSync(etc)) fs.utimesSync(path.join(etc, name), past, past);
  fs.mkdirSync(path.join(dir, 'queue'));
  fs.mkdirSync(path.join(dir, 'data'));
  execFileSync('chown', ['postfix', path.join(dir, 'data')]);
  // creates the queue's subdirectories with Postfix's owners and modes
  execFileSync('postfix', ['-c', etc, 'check'], { stdio: 'ignore' });
  // checked just now: start-fg need not check again (postfix-script removes the file)
  fs.writeFileSync(path.join(dir, 'queue', 'quick-start'), '');
  const child: ChildProcess = spawn('postfix', ['-c', etc, 'start-fg'], { stdio: 'ignore' });
  track(dir, child);
  const masterPid = (): number | undefined => masterOf(dir);
  const processes = (): number[] => {
    const master = masterPid();
    const pids = [child.pid, ...(master === undefined ? [] : groupMembers(master))];
    return pids.filter((p): p is number => p !== undefined && isRunning(p));
  };
  const stop = async (): Promise<void> => {
    const pid = masterPid();
    if (pid !== undefined) {
      // TERM: the master signals its children (its process group) and exits; the wrapper, which waits for it,
      // then exits too. Done when the whole group is gone; SIGKILL to the group past a bound.
      process.kill(pid, 'SIGTERM');
      if (!(await eventually(() => groupMembers(pid).length === 0, 10_000))) {
        killInstance(dir);
        try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
      }
      await eventually(() => groupMembers(pid).length === 0, 5_000);
    }
    // the wrapper exits once its master has; bounded all the same
    if (child.exitCode === null && child.signalCode === null) {
      await Promise.race([stopChild(child), new Promise((r) => setTimeout(r, 5_000).unref())]);
      if (child.exitCode === null && child.signalCode === null) await stopChild(child, 'SIGKILL');
    }
    running.delete(dir);
    removeTempDir(dir);
  };
  const log = (): string => (fs.existsSync(maillog) ? fs.readFileSync(maillog, 'utf8') : '');
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && child.exitCode === null) {
    const flush = (): void => {
      try {
        execFileSync('postqueue', ['-c', etc, '-f'], { stdio: 'ignore', timeout: 10_000 });
      } catch {
        // the queue is retried on its own schedule anyway
      }
    };
    if (masterPid() !== undefined && (await canConnect(port))) return { port, dir, etc, log, stop, masterPid, processes, flush };
    await new Promise((r) => setTimeout(r, 100));
  }
  const text = log();
  await stop();
  throw new Error(`postfix did not start:\n${text}`);
}

export async function startPostfix(relayPort: number): Promise<Postfix> {
  const pf = await startPostfixInstance((dir) => [
    ...baseMainCf(dir, 'client.test'),
    'mynetworks = 127.0.0.0/8',
    'smtpd_relay_restrictions = permit_mynetworks, reject',
    `relayhost = [127.0.0.1]:${relayPort}`,
  ]);
  return { port: pf.port, log: pf.log, stop: pf.stop, flush: pf.flush };
}
