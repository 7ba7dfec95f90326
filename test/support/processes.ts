// Helpers for the servers the tests start: stop one by PID and wait for it,
// and see whether something accepts connections on a loopback port.

import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Sends `signal` if the process still runs, and resolves once it has exited. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** Polls `ok` until it holds or `ms` pass (bounded): for what another process does asynchronously. */
export async function eventually(ok: () => boolean, ms = 5_000, everyMs = 20): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}

/** The private folder of `kind` of process `pid` (esets-relay-KIND-PIDNS-PID-RANDOM in the temp folder), if there is one. */
export function processDirOf(kind: 'run' | 'spool', pid: number, base = os.tmpdir()): string | undefined {
  const name = fs.readdirSync(base).find((n) => new RegExp(`^esets-relay-${kind}-\\d+-${pid}-`).test(n));
  return name === undefined ? undefined : path.join(base, name);
}

/** The PIDs of a process's children (a relay's workers); none once it is gone. */
export function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** State and process group of `pid` from /proc/PID/stat; undefined when there is no such process. */
function procStat(pid: number): { state: string; pgid: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // after "(comm)": state ppid pgrp ...
    const [state, , pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state, pgid: Number(pgid) };
  } catch {
    return undefined;
  }
}

/** Whether `pid` runs: exists and is not a zombie (an exited child nobody reaped yet). */
export function isRunning(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== 'Z';
}

/** The running processes of process group `pgid` (a daemon that leads its own group, and its children). */
export function groupMembers(pgid: number): number[] {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => {
    const stat = procStat(pid);
    return stat !== undefined && stat.pgid === pgid && stat.state !== 'Z';
  });
}
