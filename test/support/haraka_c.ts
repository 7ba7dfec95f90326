// The relay as a Haraka operator deploys it: `haraka -c DIR` (Haraka's own
// bin/haraka, no launcher) on a Haraka folder holding this package's config/
// (or the test's), with plugins/, dist/ and node_modules/ linked from the
// package, as in the README's "haraka -c". Stopped by PID.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_DIR, Relay, startListening } from './relay';
import { tempDir } from './temp_dirs';

export const HARAKA_BIN = path.join(PROJECT_DIR, 'node_modules', 'Haraka', 'bin', 'haraka');

export interface HarakaCOptions {
  port: number;
  esetsCfg: string;
  /** config/plugins, one name per line (default: the package's) */
  plugins?: string[];
  /** smtp.ini [main] nodes (default 0: one process, no cluster) */
  nodes?: number;
  /** smtp.ini [main] inactivity_timeout, seconds */
  inactivityTimeout?: number;
  /** other files of config/, by name */
  files?: Record<string, string>;
  /** plugins of the test's own, plugins/NAME.js by name, beside the package's */
  ownPlugins?: Record<string, string>;
}

/** A Haraka folder for `haraka -c`: the package's config/ with the test's files over it. */
export function harakaCDir(opts: HarakaCOptions): string {
  const dir = tempDir('esets-haraka-c-');
  const config = path.join(dir, 'config');
  fs.cpSync(path.join(PROJECT_DIR, 'config'), config, { recursive: true });
  fs.writeFileSync(path.join(config, 'esets.cfg'), opts.esetsCfg);
  fs.writeFileSync(path.join(config, 'smtp.ini'), [
    '[main]', `listen=127.0.0.1:${opts.port}`, `nodes=${opts.nodes ?? 0}`, `inactivity_timeout=${opts.inactivityTimeout ?? 30}`, '',
  ].join('\n'));
  if (opts.plugins) fs.writeFileSync(path.join(config, 'plugins'), `${opts.plugins.join('\n')}\n`);
  for (const [name, text] of Object.entries(opts.files ?? {})) fs.writeFileSync(path.join(config, name), text);
  for (const name of ['dist', 'node_modules']) fs.symlinkSync(path.join(PROJECT_DIR, name), path.join(dir, name));
  fs.mkdirSync(path.join(dir, 'plugins'));
  for (const name of fs.readdirSync(path.join(PROJECT_DIR, 'plugins'))) {
    fs.symlinkSync(path.join(PROJECT_DIR, 'plugins', name), path.join(dir, 'plugins', name));
  }
  for (const [name, text] of Object.entries(opts.ownPlugins ?? {})) fs.writeFileSync(path.join(dir, 'plugins', `${name}.js`), text);
  return dir;
}

export async function startHarakaC(opts: HarakaCOptions): Promise<Relay & { dir: string }> {
  const dir = harakaCDir(opts);
  const relay = await startListening([process.execPath, HARAKA_BIN, '-c', dir], dir, {}, opts.port);
  return Object.assign(relay, { dir });
}

/** Runs `haraka -c` expected to stop by itself (a configuration it must refuse). */
export function runHarakaC(opts: HarakaCOptions, timeoutMs = 30_000): Promise<{ code: number | string; output: string }> {
  const dir = harakaCDir(opts);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [HARAKA_BIN, '-c', dir], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d.toString(); });
    child.stderr.on('data', (d) => { output += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, output });
    });
  });
}
