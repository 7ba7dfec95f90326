// The configuration every esets_* plugin reads: esets.cfg (named by
// config/esets_relay.ini, with the launcher's command-line overrides) and
// its user_config file. Loaded once per process, then reloaded when either
// file changes or at HUP (`systemctl reload`: io/hangup); a reload with errors, or one that throws, is reported and the
// configuration in force stays: a bad edit never stops the relay. The
// manager process saves each good configuration; a worker that starts while
// a broken edit is on disk runs on that (io/last_good_config).

import cluster from 'node:cluster';
import fs from 'node:fs';
import path from 'node:path';
import { Diagnostic, formatDiagnostic, hasErrors } from '../../lib/diagnostics';
import { EsetsConfig, isOptionName, parseOptionValue } from '../../lib/esets_options';
import type { UserSection } from '../../lib/user_config';
import { missingSettings } from '../../lib/haraka_settings';
import { guardLoad, loadConfigFiles, LoadResult, RelayConfig, underHarakaC, WARNED_ENV } from '../../io/config_files';
import { readLastGood, saveLastGood } from '../../io/last_good_config';
import { relayMetrics } from '../../io/relay_metrics';
import { onHangup } from '../../io/hangup';
import { checkHarakaDeployment, listsPlugin } from './haraka_c_checks';
import type { Plugin } from './haraka';
import { relayLog, setConfigInForce } from './relay_log';

export type { RelayConfig } from '../../io/config_files';

export interface RelayIni {
  main?: { esets_cfg?: string };
  overrides?: Record<string, string | number | boolean>;
}

let current: RelayConfig | undefined;
setConfigInForce(() => current?.config);
let watchers: fs.FSWatcher[] = [];
let reloadTimer: NodeJS.Timeout | undefined;
/** what a HUP reloads with: the plugin and overrides of the last load (undefined: HUP not taken yet) */
let hangupReload: (() => void) | undefined;
/** how long a changed file must stay unchanged before it is read */
const RELOAD_SETTLE_MS = 300;
/**
 * Lines about the configuration are the relay's, not the plugin's that happened
 * to load it first: Haraka's logger takes the origin from the last argument
 * with a `name` (`[esets_relay]` instead of `[esets_connection_limits]`).
 */
const ORIGIN = { name: 'esets_relay' };

function say(plugin: Plugin, level: 'lognotice' | 'logwarn' | 'logerror', text: string): void {
  plugin[level](ORIGIN, text);
}

/** The plugin, its lines said as the relay's (for relayLog, which logs through Haraka's methods with syslog_facility = none). */
function asRelay(plugin: Plugin): Plugin {
  const relay = Object.create(plugin) as Plugin;
  for (const level of ['logdebug', 'loginfo', 'lognotice', 'logwarn', 'logerror'] as const) {
    relay[level] = (...args: unknown[]): void => plugin[level](ORIGIN, ...args);
  }
  return relay;
}

export function configDir(): string {
  return path.join(process.env.HARAKA ?? process.cwd(), 'config');
}

/** Drops the loaded config (and stops watching) so the next call reads the files again. */
export function forgetRelayConfig(): void {
  current = undefined;
  for (const w of watchers) w.close();
  watchers = [];
}

/** A configuration that cannot be used: the message says where, a stack trace would add nothing. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
    this.stack = `${this.name}: ${message}`;
  }
}

/** The configuration in force; the first call throws a ConfigError (stopping Haraka's start) when it has errors. */
export function relayConfig(plugin: Plugin): RelayConfig {
  if (current) return current;
  const ini = plugin.config.get('esets_relay.ini') as RelayIni;
  const file = path.resolve(configDir(), ini.main?.esets_cfg ?? 'esets.cfg');
  const { loaded, diagnostics } = guardLoad(file, () => loadWithIniOverrides(file, ini.overrides ?? {}));
  // said once: by the launcher (stderr) or the manager, not again by every worker
  if (!cluster.isWorker && !process.env[WARNED_ENV]) {
    for (const d of diagnostics) if (d.severity === 'warning') say(plugin, 'logwarn', formatDiagnostic(d));
  }
  const errors = diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
  current = loaded ?? lastGood(plugin, file, ini.overrides ?? {}, errors);
  if (!current) throw new ConfigError(errors.join('\n'));
  try {
    checkHarakaDeployment(plugin, current, (message) => new ConfigError(message));
  } catch (err) {
    current = undefined;
    throw err;
  }
  saveForWorkers(plugin, current);
  watch(plugin, ini.overrides ?? {});
  reloadAtHangup(plugin, ini.overrides ?? {});
  // an edit between the read above and the watch would go unseen until the next edit
  if (loaded && changedOnDisk(loaded)) scheduleReload(plugin, ini.overrides ?? {});
  return current;
}

/**
 * HUP reads the files again whether or not a watch saw them change (a file
 * behind a link, a network file system, an edit the watch missed): what
 * `systemctl reload` does is what a live edit does. Each process reloads its
 * own; the manager passes the signal on (io/hangup).
 */
function reloadAtHangup(plugin: Plugin, rawOverrides: Record<string, string | number | boolean>): void {
  const first = !hangupReload;
  hangupReload = (): void => {
    clearTimeout(reloadTimer);
    reload(plugin, rawOverrides, ' at HUP');
  };
  if (first) onHangup(() => hangupReload?.());
}

/** Whether a file the configuration was built from now reads differently. */
function changedOnDisk(config: RelayConfig): boolean {
  return Object.entries(config.texts).some(([file, text]) => {
    try {
      return fs.readFileSync(file, 'utf8') !== text;
    } catch {
      return true;
    }
  });
}

/** Each change starts the wait again: a file still being written is read once it is still. */
function scheduleReload(plugin: Plugin, rawOverrides: Record<string, string | number | boolean>): void {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => reload(plugin, rawOverrides), RELOAD_SETTLE_MS);
}

/** A worker started while the files on disk have errors: the manager's last good configuration, said loudly. */
function lastGood(
  plugin: Plugin, file: string, rawOverrides: Record<string, string | number | boolean>, errors: string[],
): RelayConfig | undefined {
  if (!cluster.isWorker) return undefined;
  const saved = readLastGood(file);
  if (!saved) return undefined;
  const { loaded } = guardLoad(file, () => loadWithIniOverrides(file, rawOverrides, saved.texts));
  if (!loaded) return undefined;
  // where the last good configuration says
  const log = relayLog(asRelay(plugin), undefined, loaded.config);
  for (const e of errors) log.error(e);
  log.error(`configuration on disk not used (errors above): this worker runs on the last good one, loaded ${saved.savedAt} (${file})`);
  return loaded;
}

/** The manager of a cluster (the launcher, or Haraka with smtp.ini nodes) keeps each good configuration for its workers. */
function saveForWorkers(plugin: Plugin, config: RelayConfig): void {
  if (!cluster.isPrimary) return;
  const smtp = plugin.config.get('smtp.ini') as { main?: { nodes?: string | number } } | undefined;
  const nodes = smtp?.main?.nodes;
  if (!nodes || nodes === '0') return;
  try {
    saveLastGood(config);
  } catch (err) {
    relayLog(asRelay(plugin), undefined, config.config)
      .warning(`cannot save the configuration for restarted workers: ${(err as Error).message}`);
  }
}

/** The effective configuration of one message: the matched user section over the agent section, then the command line. */
export function configFor(
  rc: RelayConfig, rcptKeys: readonly string[] | undefined, senderKeys: readonly string[] | undefined,
): { config: EsetsConfig; section?: UserSection } {
  const section = rc.users?.index.match(rcptKeys, senderKeys);
  if (!section) return { config: rc.config };
  return { config: { ...rc.config, ...section.settings, ...rc.overrides }, section };
}

/** esets.cfg with esets_relay.ini's [overrides] (as the plugins load it; esets_smtp --check --haraka-dir too). */
export function loadWithIniOverrides(
  file: string, raw: Record<string, string | number | boolean>, saved?: Record<string, string>,
): LoadResult {
  const diagnostics: Diagnostic[] = [];
  const overrides: Partial<EsetsConfig> = {};
  for (const [key, value] of Object.entries(raw)) {
    // haraka-config turns numeric-looking values into numbers
    const parsed = isOptionName(key) ? parseOptionValue(key, String(value)) : undefined;
    if (!parsed?.ok) {
      diagnostics.push({ severity: 'error', file: 'esets_relay.ini', key, message: `override '${key} = ${value}' is not valid` });
      continue;
    }
    (overrides as Record<string, unknown>)[key] = parsed.value;
  }
  const result = loadConfigFiles(file, overrides, 'esets_relay.ini [overrides]', saved);
  return { loaded: hasErrors(diagnostics) ? undefined : result.loaded, diagnostics: [...diagnostics, ...result.diagnostics] };
}

/** Watches the folders of esets.cfg and user_config (editors replace files by renaming). */
function watch(plugin: Plugin, rawOverrides: Record<string, string | number | boolean>): void {
  for (const w of watchers) w.close();
  watchers = [];
  if (!current) return;
  const files = [current.file, current.users?.file].filter((f): f is string => Boolean(f));
  for (const dir of new Set(files.map((f) => path.dirname(f)))) {
    const names = new Set(files.filter((f) => path.dirname(f) === dir).map((f) => path.basename(f)));
    try {
      const watcher = fs.watch(dir, (_event, name) => {
        if (name && !names.has(name.toString())) return;
        scheduleReload(plugin, rawOverrides);
      });
      watcher.unref();
      // an 'error' event without a listener would end the process; the configuration in force stays
      watcher.on('error', (err) => relayLog(asRelay(plugin)).warning(`stopped watching ${dir} for configuration changes: ${err.message}`));
      watchers.push(watcher);
    } catch (err) {
      relayLog(asRelay(plugin)).warning(`cannot watch ${dir} for configuration changes: ${(err as Error).message}`);
    }
  }
}

/** Whether the configuration must name the mail server: esets_forward (under `haraka -c` another plugin may deliver). */
function needsServer(plugin: Plugin): boolean {
  return !underHarakaC() || listsPlugin(plugin, 'esets_forward');
}

/** Never throws (it runs from a timer, where an exception would end the process): the config in force stays. */
function reload(plugin: Plugin, rawOverrides: Record<string, string | number | boolean>, cause = ''): void {
  if (!current) return;
  const inForce = current.file;
  // what goes wrong is said where the configuration in force says
  const log = relayLog(asRelay(plugin), undefined, current.config);
  try {
    const { loaded, diagnostics } = guardLoad(inForce, () => loadWithIniOverrides(inForce, rawOverrides));
    for (const d of diagnostics) {
      if (d.severity === 'warning') log.warning(formatDiagnostic(d));
      else log.error(formatDiagnostic(d));
    }
    // (agent_enabled only if the configuration in force has it: under `haraka -c` it may be unset)
    const missing = loaded
      ? missingSettings(loaded.config, loaded.file, false, needsServer(plugin), loaded.lines)
        .filter((d) => d.key !== 'agent_enabled' || current?.config.agent_enabled)
      : [];
    for (const d of missing) log.error(formatDiagnostic(d));
    if (!loaded || missing.length) {
      log.error(`configuration not reloaded${cause}: the one in force stays (${inForce})`);
      relayMetrics.reload(false);
      return;
    }
    const before = current.users?.file;
    current = loaded;
    saveForWorkers(plugin, loaded);
    relayMetrics.reload(true);
    // where the new configuration says (it may have changed syslog_facility or syslog_class)
    relayLog(asRelay(plugin), undefined, loaded.config).info(`configuration reloaded${cause} from ${loaded.file}`
      + `${loaded.users ? ` and ${loaded.users.file} (${loaded.users.index.sections.length} user sections)` : ''}`);
    if (loaded.users?.file !== before) watch(plugin, rawOverrides);
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    relayMetrics.reload(false);
    try {
      log.error(`configuration not reloaded${cause} (${e.name}: ${e.message}): the one in force stays (${inForce})`);
    } catch {
      // the log itself failed: nothing left to tell, and the relay keeps serving
    }
  }
}
