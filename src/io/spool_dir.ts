// The relay's private spool folder: large messages go to disk here while they
// are scanned and forwarded. One folder per process (mode 0700, files 0600),
// so no other local user can read or swap a message; folders left by a process
// that was killed are removed by the next one to start.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PREFIX = 'esets-relay-spool-';
let dir: string | undefined;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the spool folders of processes that are gone (a kill leaves them behind). */
function removeStale(base: string): void {
  for (const name of fs.readdirSync(base)) {
    if (!name.startsWith(PREFIX)) continue;
    const pid = Number(name.slice(PREFIX.length));
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue;
    try {
      const full = path.join(base, name);
      // only our own folders: never follow a link someone else planted
      if (fs.lstatSync(full).isDirectory() && fs.lstatSync(full).uid === process.getuid?.()) fs.rmSync(full, { recursive: true, force: true });
    } catch { /* gone already, or not ours */ }
  }
}

export function spoolDir(base = os.tmpdir()): string {
  if (dir) return dir;
  removeStale(base);
  const wanted = path.join(base, `${PREFIX}${process.pid}`);
  fs.rmSync(wanted, { recursive: true, force: true });
  fs.mkdirSync(wanted, { mode: 0o700 });
  const stat = fs.lstatSync(wanted);
  if (!stat.isDirectory() || (stat.mode & 0o077) !== 0) throw new Error(`spool folder ${wanted} is not private`);
  dir = wanted;
  process.once('exit', () => fs.rmSync(wanted, { recursive: true, force: true }));
  return dir;
}
