// log_file: what the relay writes (Haraka's log, and the relay's own lines
// with syslog_facility = none) goes to this file instead of stdout, from the
// manager and every worker, each record with one O_APPEND write (records of
// several processes never mix). HUP reopens it: logrotate moves the file, then
// signals the manager, which reopens its own and passes HUP to the workers (io/hangup).

import cluster from 'node:cluster';
import fs from 'node:fs';
import { onHangup } from '../io/hangup';

/** what the workers inherit: the log file's path */
export const LOG_FILE_ENV = 'ESETS_RELAY_LOG_FILE';

type Write = (chunk: unknown, ...rest: unknown[]) => boolean;

export interface LogOwner {
  uid: number;
  gid: number;
}

/**
 * Sends stdout and stderr to `file`. `owner`: who a file the manager creates
 * belongs to (the workers' user, so they can append to it).
 */
export function logToFile(file: string, owner?: LogOwner): void {
  let fd = open(file, owner);
  for (const stream of [process.stdout, process.stderr]) {
    const write: Write = (chunk, ...rest) => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      try {
        if (bytes.length) fs.writeSync(fd, bytes);
      } catch {
        // a log that cannot be written must not stop the mail
      }
      const done = rest.find((r): r is () => void => typeof r === 'function');
      if (done) process.nextTick(done);
      return true;
    };
    stream.write = write as typeof stream.write;
  }
  onHangup(() => {
    const old = fd;
    try {
      fd = open(file, owner);
      fs.closeSync(old);
    } catch {
      // keep writing where we were
    }
  });
}

/** Creates the file if need be (for `owner`), so that start-up can check it before any output goes there. */
export function prepareLogFile(file: string, owner?: LogOwner): void {
  fs.closeSync(open(file, owner));
}

/**
 * What log_file may be, for the launcher and --check alike: a regular file, or a character device
 * (/dev/null: logs dropped on purpose). A FIFO would block the start (no reader) or the relay (a slow
 * one); a socket, a folder or a block device cannot be appended to. Links are refused apart (open).
 */
export function logFileTypeProblem(stat: fs.Stats): string | undefined {
  if (stat.isFile() || stat.isCharacterDevice()) return undefined;
  const kind = stat.isFIFO() ? 'a FIFO' : stat.isSocket() ? 'a socket' : stat.isDirectory() ? 'a folder'
    : stat.isBlockDevice() ? 'a block device' : stat.isSymbolicLink() ? 'a symbolic link' : 'not a file';
  return `is ${kind}: log_file is a regular file (or a character device such as /dev/null)`;
}

/**
 * Opens the file to append, never through a symbolic link (the manager is root
 * and the folder may be writable by others: a link planted there must not make
 * it open, or hand over, another file); a file it creates itself goes to `owner`.
 * What exists is opened O_NONBLOCK (a FIFO without a reader fails at once, never
 * hangs the start) and checked by logFileTypeProblem on the descriptor itself.
 */
function open(file: string, owner?: LogOwner): number {
  const { O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  try {
    const fd = fs.openSync(file, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW, 0o640);
    if (owner && cluster.isPrimary) fs.fchownSync(fd, owner.uid, owner.gid);
    return fd;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  let fd: number;
  try {
    fd = fs.openSync(file, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    // ENXIO: a FIFO (or a socket) with no reader
    if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err;
    throw new Error(logFileTypeProblem(fs.lstatSync(file)) ?? (err as Error).message);
  }
  const stat = fs.fstatSync(fd);
  const why = logFileTypeProblem(stat);
  if (why) {
    fs.closeSync(fd);
    throw new Error(why);
  }
  if (stat.isFile()) return fd;
  // a device: the same one again without O_NONBLOCK (Node has no fcntl), so its writes wait as usual
  try {
    const blocking = fs.openSync(`/proc/self/fd/${fd}`, O_WRONLY | O_APPEND);
    fs.closeSync(fd);
    return blocking;
  } catch {
    return fd;
  }
}
