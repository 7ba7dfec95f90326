// Under `haraka -c` (no launcher): the checks the launcher makes before Haraka
// starts, made by the first plugin that loads the configuration.

import cluster from 'node:cluster';
import os from 'node:os';
import { formatDiagnostic } from '../../lib/diagnostics';
import { agentDisabled, HARAKA_LINE_LENGTH, harakaCDiagnostics, HarakaInForce, ourPluginName } from '../../lib/haraka_c_rules';
import { RelayConfig, underHarakaC } from '../../io/config_files';
import { harakaInUse, harakaVersionReport } from '../../io/haraka_version';
import type { HarakaConfig, Plugin } from './haraka';

/** Where Haraka's configuration is read from: a plugin, or haraka-config's module_config(DIR) for esets_smtp --check. */
export interface ConfigSource {
  config: HarakaConfig;
}

interface SmtpIni {
  main?: { listen?: string; listen_host?: string; port?: number | string; nodes?: number | string };
}
interface ConnectionIni {
  headers?: { add_received?: boolean };
  haproxy?: { hosts?: string[] | string };
  main?: { postel?: boolean };
  max?: { bytes?: number | string; line_length?: number | string };
}

/** What Haraka's own files say where the launcher would have derived a setting from esets.cfg. */
export function harakaInForce(plugin: ConfigSource): HarakaInForce {
  const smtp = (plugin.config.get('smtp.ini') as SmtpIni | undefined)?.main ?? {};
  const booleans = ['+headers.add_received', '-main.postel'];
  const connection = plugin.config.get('connection.ini', { booleans }) as ConnectionIni | undefined;
  const listen = [smtp.listen, smtp.port ? `${smtp.listen_host ?? '[::0]'}:${smtp.port}` : undefined]
    .filter(Boolean).join(',') || '[::0]:25';
  const nodes = smtp.nodes === 'cpus' ? os.cpus().length : Number(smtp.nodes) || 1;
  const hosts = connection?.haproxy?.hosts;
  return {
    listen,
    nodes,
    addReceived: connection?.headers?.add_received ?? true,
    proxyHosts: (Array.isArray(hosts) ? hosts : hosts ? [hosts] : []).filter(Boolean),
    maxBytes: Number(connection?.max?.bytes) || 0,
    lineLength: Number(connection?.max?.line_length) || HARAKA_LINE_LENGTH,
    postel: connection?.main?.postel ?? false,
    plugins: pluginList(plugin),
  };
}

/** Whether config/plugins lists our plugin `name`, by its own name or the installed package's (`esets-relay/NAME`). */
export function listsPlugin(source: ConfigSource, name: string): boolean {
  return pluginList(source).some((entry) => ourPluginName(entry) === name);
}

/** config/plugins, in order (haraka-config's list type), as written there */
export function pluginList(plugin: ConfigSource): string[] {
  const list = plugin.config.get('plugins', 'list');
  return Array.isArray(list) ? list.map(String) : [];
}

/**
 * `agent_enabled = no` stops Haraka (a ConfigError from register): another
 * plugin (queue/smtp_forward) would otherwise deliver unscanned mail. The
 * options Haraka's files govern are warned about, once (not by every worker).
 */
export function checkHarakaDeployment(plugin: Plugin, rc: RelayConfig, fail: (message: string) => Error): void {
  if (!underHarakaC()) return;
  const disabled = agentDisabled(rc.config, rc.lines, rc.file);
  if (disabled) throw fail(formatDiagnostic(disabled));
  const diagnostics = harakaCDiagnostics(rc.config, rc.lines, rc.file, harakaInForce(plugin));
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) throw fail(errors.map(formatDiagnostic).join('\n'));
  if (cluster.isWorker) return;
  for (const d of diagnostics) plugin.logwarn(formatDiagnostic(d));
  // said once, by the manager (relayConfig runs this at the first load only)
  const version = harakaVersionReport(harakaInUse());
  if (version.warning) plugin.logwarn(`${version.line}: ${version.warning}`);
  else plugin.lognotice(`${version.line} in use`);
}
