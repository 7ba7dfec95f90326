// How the effective esets.cfg maps onto Haraka's own configuration files.
// The launcher writes the result over a copy of config/ before Haraka starts.

import { Diagnostic } from './diagnostics';
import { EsetsConfig, OPTION_SPECS, OptionName, OptionValue, parseHostPort } from './esets_options';
import { IniFile } from './ini';

export interface HarakaSettings {
  /** ini file name in config/ → the sections and keys to set in it */
  iniFiles: Record<string, IniFile>;
  diagnostics: Diagnostic[];
}

/**
 * What a configuration must say for the relay to run: the agent enabled and
 * the mail server (and, for the launcher, the listener). Checked at start and
 * at every reload: a truncated or half-written esets.cfg must not replace a
 * good one with built-in defaults.
 */
export function missingSettings(
  config: EsetsConfig, source: string, withListener: boolean, withServer = true, lines: Partial<Record<OptionName, number>> = {},
): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const need = (key: OptionName, why: string): void => {
    if (config[key] === undefined) {
      diagnostics.push({ severity: 'error', file: source, key, message: `option '${key}' is not set in [smtp]: ${why}` });
    }
  };
  if (!config.agent_enabled) {
    diagnostics.push({
      // the line that says `no`, if one does (else it is the default, or --no-agent-enabled)
      severity: 'error', file: source, line: lines.agent_enabled, key: 'agent_enabled',
      message: "the SMTP agent is disabled: set 'agent_enabled = yes' in [smtp] (or pass --agent-enabled)",
    });
  }
  if (withListener) {
    need('listen_addr', 'the address to listen on');
    need('listen_port', 'the port to listen on');
  }
  if (withServer) {
    need('server_addr', 'the mail server to forward to');
    need('server_port', "the mail server's port");
  }
  return diagnostics;
}

export function deriveHarakaSettings(
  config: EsetsConfig, source: string, overrides: Partial<EsetsConfig>, lines: Partial<Record<OptionName, number>> = {},
): HarakaSettings {
  const diagnostics = missingSettings(config, source, true, true, lines);

  const overrideLines: Record<string, string> = {};
  for (const [key, value] of Object.entries(overrides)) {
    overrideLines[key] = formatOptionValue(key as OptionName, value as OptionValue);
  }

  return {
    diagnostics,
    iniFiles: {
      'smtp.ini': {
        main: {
          listen: formatListen(config.listen_addr ?? '127.0.0.1', config.listen_port ?? 2525),
          nodes: String(config.num_proc),
          inactivity_timeout: String(config.timeout_client),
        },
      },
      'connection.ini': {
        headers: { add_received: String(config.add_header_received) },
        // the balancers' connections must start with a PROXY line; everyone else's must not (Haraka's haproxy support)
        ...(config.proxy_hosts.length ? { haproxy: { enabled: 'true', 'hosts[]': config.proxy_hosts } } : {}),
      },
      'esets_relay.ini': { main: { esets_cfg: source }, overrides: overrideLines },
    },
  };
}

export function formatListen(addr: string, port: number): string {
  const host = addr.includes(':') && !addr.startsWith('[') ? `[${addr}]` : addr;
  return `${host}:${port}`;
}

/** The esets.cfg spelling of a typed value, so it can be read back by parseOptionValue. */
export function formatOptionValue(key: OptionName, value: OptionValue): string {
  const { kind } = OPTION_SPECS[key].type;
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (Array.isArray(value)) return kind === 'name_list' && value.length === 0 ? '""' : value.join(kind === 'enum_list' ? ':' : ',');
  return String(value);
}

const WILDCARDS = new Set(['0.0.0.0', '::', '::0', '0:0:0:0:0:0:0:0']);

/**
 * http_listen on the SMTP listener's port where the two cannot both bind: the same address, or either one a
 * wildcard (0.0.0.0 or ::, which takes the port on every address). A run would find it only when a worker
 * fails to bind, after the status listener took the port.
 */
export function listenerClash(
  config: EsetsConfig, file: string, lines: Partial<Record<OptionName, number>>,
): Diagnostic[] {
  const status = config.http_listen ? parseHostPort(config.http_listen) : undefined;
  if (!status || config.listen_addr === undefined || status.port !== config.listen_port) return [];
  const smtp = config.listen_addr.replace(/^\[|\]$/g, '').toLowerCase();
  const http = status.host.toLowerCase();
  if (smtp !== http && !WILDCARDS.has(smtp) && !WILDCARDS.has(http)) return [];
  return [{
    severity: 'error', file, line: lines.http_listen, key: 'http_listen',
    message: `http_listen = ${config.http_listen} takes the SMTP listener's port (listen_addr = ${config.listen_addr}, `
      + `listen_port = ${config.listen_port}): the relay cannot listen there twice; give /health and /metrics another port`,
  }];
}
