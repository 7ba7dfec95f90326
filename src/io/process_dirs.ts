// The relay's private folders, one per process and kind (mode 0700, files
// 0600), so no other local user can read or swap what is in them:
//   spool: large messages while they are scanned and forwarded (each worker)
//   run:   the launcher's copy of Haraka's config, and the last good
//          configuration the workers fall back on (the manager)
// Each is removed when its process exits; folders that a killed process left
// behind are removed by the next one to start.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type ProcessDirKind = 'spool' | 'run';

const made = new Map<ProcessDirKind, string>();

function prefix(kind: ProcessDirKind): string {
  return `esets-relay-${kind}-`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the folders of this kind whose processes are gone (a kill leaves them behind). */
function removeStale(base: string, kind: ProcessDirKind): void {
  const start = prefix(kind);
  for (const name of fs.readdirSync(base)) {
    if (!name.startsWith(start)) continue;
    const pid = Number(name.slice(start.length));
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue;
    try {
      const full = path.join(base, name);
      // only our own folders: never follow a link someone else planted
      const stat = fs.lstatSync(full);
      if (stat.isDirectory() && stat.uid === process.getuid?.()) fs.rmSync(full, { recursive: true, force: true });
    } catch { /* gone already, or not ours */ }
  }
}

/** This process's private folder of `kind`, made (and stale ones removed) on first use. */
export function processDir(kind: ProcessDirKind, base = os.tmpdir()): string {
  const known = made.get(kind);
  if (known) return known;
  removeStale(base, kind);
  const wanted = path.join(base, `${prefix(kind)}${process.pid}`);
  fs.rmSync(wanted, { recursive: true, force: true });
  fs.mkdirSync(wanted, { mode: 0o700 });
  const stat = fs.lstatSync(wanted);
  if (!stat.isDirectory() || (stat.mode & 0o077) !== 0) throw new Error(`folder ${wanted} is not private`);
  made.set(kind, wanted);
  process.once('exit', () => fs.rmSync(wanted, { recursive: true, force: true }));
  return wanted;
}

export function spoolDir(): string {
  return processDir('spool');
}
