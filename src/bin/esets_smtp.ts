#!/usr/bin/env node
// esets_smtp: reads esets.cfg and the command line, derives Haraka's settings
// into a private copy of config/, and runs Haraka on it in this process.
// Signals as esets_smtp(1): TERM finishes the sessions in progress and exits,
// USR1 exits at once.

import cluster from 'node:cluster';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { helpText, parseCommandLine, DEFAULT_CONFIG_PATH } from '../lib/command_line';
import { formatDiagnostic, hasErrors } from '../lib/diagnostics';
import { deriveHarakaSettings, HarakaSettings } from '../lib/haraka_settings';
import { formatIni, mergeIni, parseIni } from '../lib/ini';
import { loadConfigFiles } from '../io/config_files';

const PROJECT_DIR = path.resolve(__dirname, '..', '..', '..');
const RUNTIME_ENV = 'ESETS_RELAY_RUNTIME';
const TIMEOUT_ENV = 'ESETS_RELAY_TIMEOUT_CLIENT';
const { version } = require(path.join(PROJECT_DIR, 'package.json')) as { version: string };

function main(): void {
  if (cluster.isWorker && process.env[RUNTIME_ENV]) {
    handleSignals(Number(process.env[TIMEOUT_ENV]) || 30);
    startHaraka(process.env[RUNTIME_ENV]!);
    return;
  }

  const cli = parseCommandLine(process.argv.slice(2));
  if (cli.command === 'help') {
    process.stdout.write(helpText('esets_smtp'));
    return;
  }
  if (cli.command === 'version') {
    const haraka = require('Haraka/package.json') as { version: string };
    process.stdout.write(`esets_smtp (esets-relay) ${version}, Haraka ${haraka.version}\n`);
    return;
  }
  if (hasErrors(cli.diagnostics)) fail(cli.diagnostics.map(formatDiagnostic), 2);

  const configFile = cli.configPath === DEFAULT_CONFIG_PATH
    ? path.join(PROJECT_DIR, DEFAULT_CONFIG_PATH)
    : path.resolve(cli.configPath);
  // loadConfigFiles turns any exception into an error; what follows gets the same: a message, not a stack
  let runtime: string;
  let timeoutClient: number;
  try {
    const { loaded, diagnostics } = loadConfigFiles(configFile, cli.overrides);
    const settings = loaded ? deriveHarakaSettings(loaded.config, configFile, cli.overrides) : undefined;
    diagnostics.push(...(settings?.diagnostics ?? []));
    for (const d of diagnostics.filter((x) => x.severity === 'warning')) process.stderr.write(`${formatDiagnostic(d)}\n`);
    if (!loaded || !settings || hasErrors(diagnostics)) {
      fail([...diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic), 'esets_smtp: not started'], 1);
    }
    const harakaConfig = cli.harakaConfigDir ? path.resolve(cli.harakaConfigDir) : path.join(PROJECT_DIR, 'config');
    runtime = writeRuntimeDir(harakaConfig, settings);
    timeoutClient = loaded.config.timeout_client;
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    fail([`${configFile}: error: cannot start: ${e.name}: ${e.message}`, 'esets_smtp: not started'], 1);
  }
  process.env[RUNTIME_ENV] = runtime;
  process.env[TIMEOUT_ENV] = String(timeoutClient);
  process.on('exit', () => fs.rmSync(runtime, { recursive: true, force: true }));
  handleSignals(timeoutClient);
  startHaraka(runtime);
}

function fail(lines: string[], code: number): never {
  process.stderr.write(`${lines.join('\n')}\n`);
  process.exit(code);
}

/** A Haraka directory of our own: config/ copied with the derived files written over it. */
function writeRuntimeDir(harakaConfig: string, settings: HarakaSettings): string {
  const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'esets-relay-'));
  const configDir = path.join(runtime, 'config');
  fs.cpSync(harakaConfig, configDir, { recursive: true });
  for (const [name, changes] of Object.entries(settings.iniFiles)) {
    const file = path.join(configDir, name);
    const base = fs.existsSync(file) ? parseIni(fs.readFileSync(file, 'utf8')) : {};
    fs.writeFileSync(file, formatIni(mergeIni(base, changes)));
  }
  // plugins/<name>/package.json points into dist/ by a relative path
  for (const dir of ['plugins', 'dist', 'node_modules']) {
    fs.symlinkSync(path.join(PROJECT_DIR, dir), path.join(runtime, dir));
  }
  return runtime;
}

/**
 * V8's young generation grows to tens of MB while a large message streams
 * through; a 2 MB semi-space keeps a worker's memory growth for a 50 MB
 * message near 50 MB (BENCHMARKS.md) at no measurable cost for small ones.
 */
const WORKER_EXEC_ARGV = ['--max-semi-space-size=2'];

function startHaraka(runtime: string): void {
  if (cluster.isPrimary) {
    // the kernel hands connections to the workers: with Node's default round robin the
    // manager holds an accepted connection for a worker, and one held for a worker that
    // dies hangs until the client gives up (test/e2e/processes.test.ts)
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ execArgv: [...process.execArgv, ...WORKER_EXEC_ARGV] });
  }
  process.env.HARAKA = runtime;
  require('Haraka/haraka.js');
}

interface HarakaServer {
  listeners: { close(cb?: () => void): void }[];
}

function handleSignals(timeoutClient: number): void {
  process.once('SIGTERM', () => {
    if (cluster.isPrimary && cluster.workers && Object.keys(cluster.workers).length) {
      stopWorkers('SIGTERM', timeoutClient + 5);
    } else {
      finishSessions(timeoutClient);
    }
  });
  process.once('SIGUSR1', () => {
    if (cluster.isPrimary) {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
    }
    process.exit(0);
  });
}

/** Stops accepting; exits when the open sessions have ended, or after timeout_client. */
function finishSessions(timeoutClient: number): void {
  const server = require('Haraka/server') as HarakaServer;
  const listeners = server.listeners.splice(0);
  let open = listeners.length;
  const done = (): void => {
    if (--open <= 0) process.exit(0);
  };
  if (open === 0) process.exit(0);
  for (const listener of listeners) listener.close(done);
  setTimeout(() => process.exit(0), timeoutClient * 1000);
}

function stopWorkers(signal: NodeJS.Signals, timeoutS: number): void {
  // Haraka restarts workers that exit; not now
  cluster.removeAllListeners('exit');
  const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
  for (const worker of workers) {
    worker.removeAllListeners('exit');
    worker.process.kill(signal);
  }
  let alive = workers.length;
  for (const worker of workers) {
    worker.once('exit', () => {
      if (--alive === 0) process.exit(0);
    });
  }
  setTimeout(() => process.exit(0), timeoutS * 1000);
}

main();
