// daemon_user: who the workers run as. The manager (started as root, or with
// CAP_NET_BIND_SERVICE as that user) binds the listener for them (cluster),
// restarts them and keeps the private run folder; each worker gives up root
// before it loads anything (supplementary groups included: Haraka's own
// smtp.ini user= keeps root's), so a flaw in message handling runs as that user.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface WorkerUser {
  name: string;
  uid: number;
  gid: number;
}

/** what the workers inherit: "name:uid:gid" */
export const WORKER_USER_ENV = 'ESETS_RELAY_WORKER_USER';

/** The user's ids, or why not. */
export function lookUpUser(name: string): WorkerUser | string {
  const id = (flag: string): number | undefined => {
    const r = spawnSync('id', [flag, '--', name], { encoding: 'utf8' });
    return r.status === 0 ? Number(r.stdout.trim()) : undefined;
  };
  const uid = id('-u');
  const gid = id('-g');
  if (uid === undefined || gid === undefined) return `no such user '${name}'`;
  return { name, uid, gid };
}

/** Whether `user` (with its groups) can read `file`: asked of the system itself (modes, groups, ACLs). */
export function canRead(user: WorkerUser, file: string): boolean {
  return asUser(user, '-r', file);
}

export function canWrite(user: WorkerUser, file: string): boolean {
  return asUser(user, '-w', file);
}

function asUser(user: WorkerUser, test: '-r' | '-w', file: string): boolean {
  const r = spawnSync('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--', 'test', test, file]);
  return r.status === 0;
}

/**
 * Lets the workers' user read a folder of the manager's (and what is in it,
 * links not followed) through its group, and nothing more: a worker cannot
 * change what the manager reads (folders 0750, files 0640, owner kept).
 */
export function shareWith(user: WorkerUser, dir: string): void {
  fs.lchownSync(dir, -1, user.gid);
  fs.chmodSync(dir, 0o750);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) {
      shareWith(user, full);
    } else {
      fs.lchownSync(full, -1, user.gid);
      fs.chmodSync(full, 0o640);
    }
  }
}

/** In a worker: becomes the user the manager named, before anything else runs. */
export function dropToWorkerUser(): void {
  const value = process.env[WORKER_USER_ENV];
  if (!value || process.getuid?.() !== 0) return;
  const [name, uid, gid] = value.split(':');
  // Node has it on POSIX systems; its type definitions leave it out
  (process as NodeJS.Process & { initgroups(user: string, extraGroup: number): void }).initgroups(name, Number(gid));
  process.setgid!(Number(gid));
  process.setuid!(Number(uid));
}
