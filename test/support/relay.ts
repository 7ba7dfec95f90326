// Runs the relay as users do: the esets_smtp launcher with an esets.cfg,
// in a child process, stopped by PID.

import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { canConnect } from './processes';
import { tempDir } from './temp_dirs';

export const PROJECT_DIR = path.resolve(__dirname, '..', '..', '..');
export const LAUNCHER = path.join(PROJECT_DIR, 'bin', 'esets_smtp.js');
/** the launcher's exit status for a start refused for its configuration (sysexits' EX_CONFIG; --check exits 1) */
export const EXIT_CONFIG = 78;

export interface Relay {
  port: number;
  process: ChildProcess;
  output(): string;
  /** resolves with the exit code (or signal) */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export function writeEsetsCfg(text: string): string {
  const dir = tempDir('esets-cfg-');
  const file = path.join(dir, 'esets.cfg');
  fs.writeFileSync(file, text);
  return file;
}

export interface RelayConfigOptions {
  serverPort: number;
  clamdSocket?: string;
  global?: Record<string, string | number>;
  smtp?: Record<string, string | number>;
}

export function esetsCfg(listenPort: number, opts: RelayConfigOptions): string {
  const smtp: Record<string, string | number> = {
    agent_enabled: 'yes',
    listen_addr: '"127.0.0.1"',
    listen_port: listenPort,
    server_addr: '"127.0.0.1"',
    server_port: opts.serverPort,
    ...opts.smtp,
  };
  // the clamd.conf checked at start is the test clamd's (startClamd writes it beside its socket),
  // not whatever the machine has in /etc/clamav
  const socketDir = opts.clamdSocket && /^\/[^,]*$/.test(opts.clamdSocket) ? path.dirname(opts.clamdSocket) : '/nonexistent';
  const global: Record<string, string | number> = { clamd_config: `"${path.join(socketDir, 'clamd.conf')}"`, ...opts.global };
  return [
    '[global]',
    `daemon_sock_path = "${opts.clamdSocket ?? '/nonexistent/clamd.sock'}"`,
    ...Object.entries(global).map(([k, v]) => `${k} = ${v}`),
    '',
    '[smtp]',
    ...Object.entries(smtp).map(([k, v]) => `${k} = ${v}`),
    '',
  ].join('\n');
}

/**
 * Runs the launcher; resolves once the relay accepts connections (or rejects if it exits first).
 * `wrap`: a command prefix that execs the launcher in the end (e.g. dns.ts's private resolver),
 * so that the PID is still the launcher's. `projectDir`: another checkout's launcher (the benchmark's
 * old-against-new runs), built there.
 */
export async function startRelay(
  args: string[], port: number, env: NodeJS.ProcessEnv = {}, wrap: string[] = [], projectDir = PROJECT_DIR,
): Promise<Relay> {
  const command = [...wrap, process.execPath, path.join(projectDir, 'bin', 'esets_smtp.js'), ...args];
  return startListening(command, projectDir, env, port);
}

/** Starts `command` and resolves once it says it listens and `port` takes connections (30 s at most). */
export async function startListening(command: string[], cwd: string, env: NodeJS.ProcessEnv, port: number): Promise<Relay> {
  const child = spawn(command[0], command.slice(1), {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d.toString(); });
  child.stderr!.on('data', (d) => { out += d.toString(); });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  const relay: Relay = {
    port,
    process: child,
    output: () => out,
    exited,
    stop: async (signal: NodeJS.Signals = 'SIGUSR1') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`relay exited (${await exited}) before listening:\n${out}`);
    }
    if (/listening on/i.test(out) && (await canConnect(port))) return relay;
    await new Promise((r) => setTimeout(r, 100));
  }
  await relay.stop('SIGKILL');
  throw new Error(`relay did not listen on ${port} within 30 s:\n${out}`);
}

/** Runs the launcher to completion (for --help, bad configs). */
/** env: added to this process's; uid/gid: run as that user (the test runs as root). */
export function runLauncher(
  args: string[], opts: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [LAUNCHER, ...args], {
      cwd: PROJECT_DIR, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env }, uid: opts.uid, gid: opts.gid,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d.toString(); });
    child.stderr.on('data', (d) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
