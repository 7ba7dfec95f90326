// esets_smtp --check (-t): everything the launcher checks before it binds,
// without binding, creating a file or starting Haraka; and --haraka-dir DIR:
// what the plugins check at start under `haraka -c DIR`, plus where Haraka
// would load each of our plugins from. Read-only: prints and gives an exit code.

import { quarantineDir } from '../lib/quarantine';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clamdConfFor, clamdConfWarnings, noClamdConfNote } from '../lib/clamd_conf';
import { Diagnostic, formatDiagnostic, hasErrors, inFileOrder, NamedAt, namedAtNote, printable } from '../lib/diagnostics';
import { EsetsConfig } from '../lib/esets_options';
import { agentDisabled, harakaCDiagnostics, ourPluginName, PACKAGE_PLUGIN_PREFIX, pluginListDiagnostics } from '../lib/haraka_c_rules';
import { deriveHarakaSettings, listenerClash } from '../lib/haraka_settings';
import { MAX_CLAMD_CONF_BYTES } from '../io/clamd_limits';
import { loadConfigFiles, LoadResult, RelayConfig } from '../io/config_files';
import { harakaIn, harakaInUse, HarakaVersion, harakaVersionReport, noHarakaFound } from '../io/haraka_version';
import type { HarakaConfig } from '../plugins/shared/haraka';
import { harakaInForce, pluginList } from '../plugins/shared/haraka_c_checks';
import { loadWithIniOverrides, RelayIni } from '../plugins/shared/relay_config';
import { logFileTypeProblem } from './log_file';
import { canRead, canWrite, lookUpUser, WorkerUser } from './worker_user';

export interface CheckResult {
  diagnostics: Diagnostic[];
  /** what was found, not a problem (`file:line: note: ...` or a plain line) */
  notes: string[];
}

/** A file the workers read; named: which esets.cfg line names it (user_config). */
export interface WorkerFile {
  path: string;
  named?: string;
}

/** Our plugins, by the names config/plugins may give them (bare, or under the package: `esets-relay/NAME`). */
export const OUR_PLUGINS = [
  'esets_connection_limits', 'esets_forward', 'esets_hide_starttls', 'esets_policy', 'esets_status', 'esets_user_config',
];
const PACKAGE_NAME = PACKAGE_PLUGIN_PREFIX.slice(0, -1);

/**
 * The user the workers switch to (undefined: they stay who started the relay),
 * or why that cannot be: the manager must be root to switch, and the user
 * must be able to read the files the workers read (at start and at every reload).
 * A file the user cannot read is an error located at that file. The same for
 * --check as for a run: a check as another user than root says what a run as
 * that user would (the packaged unit's ExecReload runs --check as the service's user).
 */
export function workerUser(name: string | undefined, files: WorkerFile[]): WorkerUser | Diagnostic | string | undefined {
  if (!name) return undefined;
  const user = lookUpUser(name);
  if (typeof user === 'string') return `daemon_user = '${name}': ${user}`;
  if (user.uid === process.getuid?.()) return undefined;
  if (process.getuid?.() !== 0) {
    return `daemon_user = '${name}': esets_smtp must start as root to run its workers as another user (or start it as '${name}')`;
  }
  for (const file of files) {
    if (!canRead(user, file.path)) {
      return {
        severity: 'error', file: file.path,
        message: `daemon_user = '${name}' cannot read ${file.path}: the workers read it at start and at every reload `
          + `(e.g. chgrp ${name} ${file.path}; chmod g+r ${file.path}, and the folders on its path)${file.named ? ` ${file.named}` : ''}`,
      };
    }
  }
  return user;
}

/**
 * What a run needs of TMPDIR (os.tmpdir()), whoever starts it: the manager makes its private run folder
 * there (mkdtemp, as the user who starts it) and each worker its spool (as `workers`, daemon_user, when
 * set; else as the manager's user). `daemonUser`: where daemon_user is named, for the message.
 */
export function tmpdirProblem(workers: WorkerUser | undefined, daemonUser?: NamedAt): Diagnostic | undefined {
  const dir = os.tmpdir();
  const error = (message: string): Diagnostic => ({
    severity: 'error', file: dir,
    message: `${message} (TMPDIR): the launcher makes its private run folder there, and each worker its spool`,
  });
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return error(code === 'ENOENT' ? 'no such folder' : `cannot be read: ${(err as Error).message}`);
  }
  if (!stat.isDirectory()) return error('not a folder');
  if (!accessible(dir, fs.constants.W_OK | fs.constants.X_OK)) return error(`cannot be written by ${whoAmI()}, who starts esets_smtp`);
  if (workers && !canWrite(workers, dir)) {
    return error(`daemon_user = '${workers.name}' cannot write it${daemonUser ? ` ${namedAtNote('daemon_user', daemonUser)}` : ''}`);
  }
  return undefined;
}

/** The files the workers read, with the esets.cfg line that names each. */
export function workerFiles(loaded: RelayConfig): WorkerFile[] {
  return [
    { path: loaded.file },
    ...(loaded.users ? [{ path: loaded.users.file, named: namedAtNote('user_config', loaded.users.namedAt) }] : []),
  ];
}

/** The launcher's checks, in the order a run makes them, up to (not including) binding the listeners. */
export function checkLauncher(
  configFile: string, overrides: Partial<EsetsConfig>, harakaConfigDir: string, snippet: string,
): CheckResult {
  const { loaded, diagnostics } = loadConfigFiles(configFile, overrides);
  const notes: string[] = [];
  if (loaded) {
    diagnostics.push(...deriveHarakaSettings(loaded.config, configFile, overrides, loaded.lines).diagnostics);
    diagnostics.push(...clamdConfDiagnostics(loaded, snippet, notes));
    if (!isDir(harakaConfigDir)) {
      diagnostics.push({
        severity: 'error', file: harakaConfigDir, message: 'not a folder (--haraka-config): the launcher copies it to run Haraka',
      });
    } else {
      diagnostics.push(...launcherRules(loaded, harakaConfigDir));
    }
    const user = workerUser(loaded.config.daemon_user, workerFiles(loaded));
    if (typeof user === 'string') diagnostics.push({ severity: 'error', file: configFile, line: loaded.lines.daemon_user, message: user });
    else if (user && 'message' in user) diagnostics.push(user);
    const owner = user && typeof user !== 'string' && !('message' in user) ? user : undefined;
    // when daemon_user is refused, the run stops before TMPDIR: the manager's own use of it is still checked
    const tmp = tmpdirProblem(owner, { file: configFile, line: loaded.lines.daemon_user });
    if (tmp) diagnostics.push(tmp);
    if (loaded.config.log_file) {
      const logFile = path.resolve(path.dirname(configFile), loaded.config.log_file);
      const why = logFileProblem(logFile, owner);
      if (why) diagnostics.push({ severity: 'error', file: configFile, line: loaded.lines.log_file, key: 'log_file', message: why });
    }
    if (quarantineEnabled(loaded)) {
      const why = quarantineFolderProblem(quarantineDir(loaded.config, configFile));
      // a warning, as at start: each message to keep is deferred until the folder can be written
      if (why) {
        diagnostics.push({
          severity: 'warning', file: configFile, line: loaded.lines.daemon_quarantine, key: 'daemon_quarantine',
          message: `${why}: messages to quarantine are deferred until it can be written`,
        });
      }
    }
  }
  const haraka = harakaInUse();
  // the run refuses to start without one (the --haraka-dir check leaves it to the haraka that runs)
  if (!haraka) diagnostics.push({ severity: 'error', file: 'esets_smtp', message: noHarakaFound() });
  else diagnostics.push(...harakaVersionDiagnostics(haraka, notes));
  return { diagnostics, notes };
}

/**
 * What the launcher refuses or warns about beyond esets.cfg itself, in a run and in --check alike: a status
 * listener on the SMTP listener's port, and what its Haraka config folder's plugins list means (the same
 * rules as under haraka -c: without esets_policy nothing would be scanned).
 */
export function launcherRules(loaded: RelayConfig, harakaConfigDir: string): Diagnostic[] {
  return [
    ...listenerClash(loaded.config, loaded.file, loaded.lines),
    ...pluginListDiagnostics(loaded.config, loaded.lines, loaded.file, readPluginList(path.join(harakaConfigDir, 'plugins'))),
  ];
}

/** config/plugins as Haraka's list type reads it: one name per line, blank lines and `#` lines skipped. */
function readPluginList(file: string): string[] {
  return readLines(file).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

/** What `haraka -c DIR` checks at start with our plugins, and where it would load each of them from. */
export function checkHarakaDir(dir: string, snippet: string): CheckResult {
  const notes: string[] = [];
  const configDir = path.join(dir, 'config');
  if (!isDir(configDir)) {
    const message = 'no config/ folder: not a Haraka folder (haraka -i DIR makes one)';
    return { diagnostics: [{ severity: 'error', file: dir, message }], notes };
  }
  // Haraka's own reader, on DIR/config as the plugins see it under haraka -c DIR
  const harakaConfig = require('haraka-config') as { module_config(defaults: string, overrides?: string): HarakaConfig };
  const source = { config: harakaConfig.module_config(dir) };
  const ini = (source.config.get('esets_relay.ini') ?? {}) as RelayIni;
  const file = path.resolve(configDir, ini.main?.esets_cfg ?? 'esets.cfg');
  notes.push(`${path.join(configDir, 'esets_relay.ini')}: note: esets.cfg checked: ${file}`);
  const { loaded, diagnostics }: LoadResult = loadWithIniOverrides(file, ini.overrides ?? {});
  if (loaded) {
    const disabled = agentDisabled(loaded.config, loaded.lines, file);
    if (disabled) diagnostics.push(disabled);
    diagnostics.push(...harakaCDiagnostics(loaded.config, loaded.lines, file, harakaInForce(source)));
    diagnostics.push(...clamdConfDiagnostics(loaded, snippet, notes));
  }
  diagnostics.push(...pluginResolution(dir, pluginList(source), notes));
  const haraka = harakaIn(dir);
  if (haraka) diagnostics.push(...harakaVersionDiagnostics(haraka, notes));
  else notes.push(`${dir}: note: no Haraka in node_modules/Haraka: the haraka that runs haraka -c decides (the relay names it at start)`);
  return { diagnostics, notes };
}

/** Each of our plugins in config/plugins, resolved as Haraka 3 resolves a plugin name under HARAKA=dir. */
function pluginResolution(dir: string, listed: readonly string[], notes: string[]): Diagnostic[] {
  const pluginsFile = path.join(dir, 'config', 'plugins');
  const lines = readLines(pluginsFile);
  const out: Diagnostic[] = [];
  for (const name of listed) {
    const bare = name.startsWith('haraka-plugin-') ? name.slice('haraka-plugin-'.length) : name;
    const ours = ourPluginName(bare);
    if (!OUR_PLUGINS.includes(ours)) continue;
    const line = lines.findIndex((l) => l.replace(/#.*/, '').trim() === name) + 1 || undefined;
    const candidates = [
      path.resolve(dir, 'plugins', `${bare}.js`),
      path.resolve(dir, 'node_modules', `haraka-plugin-${bare}`, 'package.json'),
      path.resolve(dir, '..', `haraka-plugin-${bare}`, 'package.json'),
      path.resolve(dir, 'plugins', bare, 'package.json'),
      path.resolve(dir, 'node_modules', bare, 'package.json'),
    ];
    const found = candidates.find((c) => fs.existsSync(c));
    if (!found) {
      out.push({
        severity: 'error', file: pluginsFile, line,
        message: `plugin '${name}' is not found: Haraka looks for ${candidates.map((c) => path.relative(dir, c)).join(', ')} in ${dir} `
          // the package is there: the short name is a clone's, the installed package's is esets-relay/NAME
          + (fs.existsSync(path.resolve(dir, 'node_modules', PACKAGE_NAME, ours, 'package.json'))
            ? `(the installed package's plugin is listed as '${PACKAGE_NAME}/${ours}', see docs/haraka_c.md)`
            : `(npm install ${PACKAGE_NAME} there, see docs/haraka_c.md)`),
      });
      continue;
    }
    const main = found.endsWith('package.json') ? mainOf(found) : found;
    if (!fs.existsSync(main)) {
      out.push({ severity: 'error', file: found, message: `plugin '${name}': its main file ${main} does not exist (not built?)` });
      continue;
    }
    notes.push(`${pluginsFile}${line ? `:${line}` : ''}: note: plugin '${name}' (${ours}) loads from ${found}`);
  }
  return out;
}

function mainOf(packageJson: string): string {
  try {
    const main = (JSON.parse(fs.readFileSync(packageJson, 'utf8')) as { main?: unknown }).main;
    return path.resolve(path.dirname(packageJson), typeof main === 'string' ? main : 'index.js');
  } catch {
    return path.resolve(path.dirname(packageJson), 'index.js');
  }
}

/** The Haraka in use as a note, and its warning (located at its package.json) when it is not version 3. */
function harakaVersionDiagnostics(haraka: HarakaVersion | undefined, notes: string[]): Diagnostic[] {
  const report = harakaVersionReport(haraka);
  notes.push(`esets_smtp: ${report.line}`);
  if (!report.warning) return [];
  return [{ severity: 'warning', file: haraka ? path.join(haraka.path, 'package.json') : 'Haraka', message: report.warning }];
}

/**
 * clamd.conf as the esets_policy plugin checks it at start; an absent file is silent there and here (clamd may be elsewhere).
 * No file to check at all: the plugin's notice, as a note (at daemon_sock_path's line).
 */
function clamdConfDiagnostics(loaded: RelayConfig, snippet: string, notes?: string[]): Diagnostic[] {
  const named = clamdConfFor(loaded.config.clamd_config, loaded.config.daemon_sock_path);
  if (!named) {
    const line = loaded.lines.daemon_sock_path;
    notes?.push(`${loaded.file}${line ? `:${line}` : ''}: note: ${noClamdConfNote(loaded.config.daemon_sock_path)}`);
    return [];
  }
  const file = path.resolve(path.dirname(loaded.file), named);
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile() || stat.size > MAX_CLAMD_CONF_BYTES) return [];
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    return [{
      severity: 'warning', file, message: `cannot read: ${(err as Error).message}: the relay cannot check the clamd settings it needs `
        + `(clamd_config${loaded.lines.clamd_config ? `, named at ${loaded.file}:${loaded.lines.clamd_config}` : ''})`,
    }];
  }
  return clamdConfWarnings(text, file, snippet);
}

/** Why the launcher could not open log_file to append (it would create it, as `owner`), checked without creating it. */
function logFileProblem(file: string, owner: WorkerUser | undefined): string | undefined {
  const dir = path.dirname(file);
  let stat: fs.Stats | undefined;
  try {
    stat = fs.lstatSync(file);
  } catch {
    // absent: the launcher creates it in its folder
  }
  if (!stat) {
    if (!isDir(dir)) return `log_file ${file}: its folder ${dir} does not exist`;
    if (!accessible(dir, fs.constants.W_OK | fs.constants.X_OK)) return `log_file ${file}: cannot create it in ${dir}: permission denied`;
    return undefined;
  }
  if (stat.isSymbolicLink()) return `log_file ${file}: is a symbolic link (never followed: the launcher would not open it)`;
  const kind = logFileTypeProblem(stat);
  if (kind) return `log_file ${file}: ${kind}`;
  if (!accessible(file, fs.constants.W_OK)) return `log_file ${file}: cannot be written: permission denied`;
  if (owner && !canWrite(owner, file)) {
    return `daemon_user = '${owner.name}' cannot write log_file ${file} (e.g. chown ${owner.name} ${file})`;
  }
  return undefined;
}

/** This process's user name (its uid where the system has no name for it: a container's arbitrary uid). */
function whoAmI(): string {
  try {
    return os.userInfo().username;
  } catch {
    return `uid ${process.getuid?.()}`;
  }
}

/** Whether [global], [smtp] or a user section keeps messages in the quarantine. */
export function quarantineEnabled(loaded: Pick<RelayConfig, 'config' | 'users'>): boolean {
  return loaded.config.av_quarantine_enabled || (loaded.users?.index.sections.some((s) => s.settings.av_quarantine_enabled) ?? false);
}

/**
 * Why the quarantine folder could not be used, looked at without making it:
 * not a folder, or (not there yet) its nearest existing parent is not a
 * folder this process could make it in (the root manager makes it for daemon_user).
 */
export function quarantineFolderProblem(dir: string): string | undefined {
  let at = dir;
  for (;;) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(at);
    } catch {
      const up = path.dirname(at);
      if (up === at) return `daemon_quarantine ${dir}: no folder above it exists`;
      at = up;
      continue;
    }
    if (!stat.isDirectory()) return `daemon_quarantine ${dir}: ${at} is not a folder`;
    if (accessible(at, fs.constants.W_OK | fs.constants.X_OK)) return undefined;
    return `daemon_quarantine ${dir}: ${at === dir ? 'cannot be written' : `cannot be made in ${at}`} by ${whoAmI()}`;
  }
}

function accessible(file: string, mode: number): boolean {
  try {
    fs.accessSync(file, mode);
    return true;
  } catch {
    return false;
  }
}

function isDir(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split(/\r?\n/);
  } catch {
    return [];
  }
}

function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The report: every diagnostic in file order, the notes, one result line. Returns the exit code (0: it would start, 1: not). */
export function printCheck(result: CheckResult, write: (text: string) => void): number {
  const diagnostics = inFileOrder(result.diagnostics);
  for (const d of diagnostics) write(`${formatDiagnostic(d)}\n`);
  for (const note of result.notes) write(`${printable(note)}\n`);
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = diagnostics.length - errors;
  if (!hasErrors(diagnostics)) {
    write(`esets_smtp: configuration OK${warnings ? ` (${count(warnings, 'warning')})` : ''}\n`);
    return 0;
  }
  const also = warnings ? ` and ${count(warnings, 'warning')}` : '';
  write(`esets_smtp: configuration has ${count(errors, 'error')}${also}: it would not start\n`);
  return 1;
}
