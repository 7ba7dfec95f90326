// The relay's private folders, one per process and kind (mode 0700, files
// 0600), so no other local user can read or swap what is in them:
//   spool: large messages while they are scanned and forwarded (each worker)
//   run:   the launcher's copy of Haraka's config, and the last good
//          configuration the workers fall back on (the manager)
// Named esets-relay-KIND-PIDNS-PID-RANDOM: unique even where every manager is
// PID 1, and a process removes only folders of its own PID namespace (in
// another container sharing /tmp, a PID it cannot see is not a dead one).
// Each is removed when its process exits; folders that a killed process left
// behind are removed by the next one to start, or by the manager when it kills
// its workers.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type ProcessDirKind = 'spool' | 'run';

const made = new Map<ProcessDirKind, string>();

/** this process's PID namespace (its inode number; '0' where /proc does not say) */
const PID_NAMESPACE = ((): string => {
  try {
    return /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
  } catch {
    return '0';
  }
})();

function prefix(kind: ProcessDirKind): string {
  return `esets-relay-${kind}-${PID_NAMESPACE}-`;
}

/** The process a folder of `kind` of this PID namespace belongs to, from its name. */
function ownerPid(kind: ProcessDirKind, name: string): number | undefined {
  const m = new RegExp(`^${prefix(kind)}(\\d+)-[A-Za-z0-9]+$`).exec(name);
  return m ? Number(m[1]) : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the folders of `kind` that `dead` says are left over, never through
 * a link; only this user's, unless `anyOwner` (the manager removing the folders
 * of workers it killed, which run as daemon_user).
 */
function removeWhere(base: string, kind: ProcessDirKind, dead: (pid: number) => boolean, anyOwner = false): void {
  let names: string[];
  try {
    names = fs.readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = ownerPid(kind, name);
    if (pid === undefined || !dead(pid)) continue;
    try {
      const full = path.join(base, name);
      const stat = fs.lstatSync(full);
      if (stat.isDirectory() && (anyOwner || stat.uid === process.getuid?.())) fs.rmSync(full, { recursive: true, force: true });
    } catch { /* gone already, or not ours */ }
  }
}

/** The folders of `kind` of a process that was just killed (the manager's workers). */
export function removeProcessDirs(kind: ProcessDirKind, pid: number, base = os.tmpdir()): void {
  removeWhere(base, kind, (p) => p === pid, true);
}

/** This process's private folder of `kind`, made (and stale ones removed) on first use, and again if it was removed. */
export function processDir(kind: ProcessDirKind, base = os.tmpdir()): string {
  const known = made.get(kind);
  // a folder removed under a running process (a tmp cleaner) is made again, with a new name
  if (known && fs.existsSync(known)) return known;
  removeWhere(base, kind, (pid) => pid !== process.pid && !alive(pid));
  // mkdtemp: a new name, made atomically, mode 0700
  const dir = fs.mkdtempSync(path.join(base, `${prefix(kind)}${process.pid}-`));
  const stat = fs.lstatSync(dir);
  if (!stat.isDirectory() || (stat.mode & 0o077) !== 0) throw new Error(`folder ${dir} is not private`);
  made.set(kind, dir);
  process.once('exit', () => {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch { /* the exit goes on: the next start removes what is left */ }
  });
  return dir;
}

export function spoolDir(): string {
  return processDir('spool');
}
