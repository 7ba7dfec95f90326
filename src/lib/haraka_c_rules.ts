// Under `haraka -c` Haraka's own files govern what the launcher would derive
// from esets.cfg (lib/haraka_settings): the listener, the worker count, the
// Received: line, the balancers, the user. DESIGN "Two ways to deploy": each
// such option is applied or said at start, naming the option, its value and
// the Haraka setting in force; nothing is silently ignored.

import type { Diagnostic } from './diagnostics';
import type { EsetsConfig, OptionName } from './esets_options';
import { formatListen } from './haraka_settings';

/** What Haraka's configuration says, as read by the plugins (haraka-config). */
export interface HarakaInForce {
  /** smtp.ini [main] listen (or listen_host:port), as written */
  listen: string;
  /** Haraka's worker processes: smtp.ini [main] nodes resolved (unset or 0: 1, one process) */
  nodes: number;
  /** connection.ini [headers] add_received (Haraka's default: true) */
  addReceived: boolean;
  /** connection.ini [haproxy] hosts[] */
  proxyHosts: string[];
  /** connection.ini [max] bytes (Haraka's default: 0, no limit) */
  maxBytes: number;
  /** connection.ini [max] line_length: the longest command line (Haraka's default: 512) */
  lineLength: number;
  /** connection.ini [main] postel: envelope addresses past RFC 5321's sizes taken (Haraka's default: false) */
  postel: boolean;
  /** config/plugins, in order */
  plugins: string[];
}

/** Haraka's own default for connection.ini [max] line_length */
export const HARAKA_LINE_LENGTH = 512;
/**
 * The longest command line the launcher's Haraka takes, CRLF not counted: Postfix's line_length_limit. A MAIL
 * or RCPT with DSN parameters may be 500 characters over 512 (RFC 3461 section 4).
 */
export const COMMAND_LINE_LENGTH = 2048;
/** connection.ini [max] line_length for it: Haraka counts the line's CRLF */
export const LINE_LENGTH_SETTING = COMMAND_LINE_LENGTH + 2;

/** Plugin names as config/plugins may write them. */
export const CLAMD_PLUGIN_NAMES = ['clamd', 'haraka-plugin-clamd'];

/** the folder our plugins are found under when the npm package is installed into a Haraka folder */
export const PACKAGE_PLUGIN_PREFIX = 'esets-relay/';

/** A config/plugins entry as our short plugin name: `esets-relay/esets_policy` (installed package) is `esets_policy`. */
export function ourPluginName(entry: string): string {
  return entry.startsWith(PACKAGE_PLUGIN_PREFIX) ? entry.slice(PACKAGE_PLUGIN_PREFIX.length) : entry;
}

/**
 * `agent_enabled = no` under haraka -c: Haraka is not started (by the plugins' ConfigError), since another
 * plugin (queue/smtp_forward) would otherwise deliver unscanned mail.
 */
export function agentDisabled(
  config: EsetsConfig, lines: Partial<Record<OptionName, number>>, file: string,
): Diagnostic | undefined {
  if (config.agent_enabled) return undefined;
  return {
    severity: 'error', file, line: lines.agent_enabled, key: 'agent_enabled',
    message: 'the SMTP agent is disabled (agent_enabled = no): Haraka is not started, so that no other plugin delivers unscanned mail; '
      + "set 'agent_enabled = yes' in [smtp]",
  };
}

export function harakaCDiagnostics(
  config: EsetsConfig, lines: Partial<Record<OptionName, number>>, file: string, haraka: HarakaInForce,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  const warn = (key: OptionName, message: string, line = lines[key]): void => {
    out.push({ severity: 'warning', file, line, key, message });
  };
  const set = (key: OptionName): boolean => lines[key] !== undefined;

  if (set('listen_addr') || set('listen_port')) {
    const ours = formatListen(config.listen_addr ?? '127.0.0.1', config.listen_port ?? 2525);
    const theirs = haraka.listen.split(',').map((s) => s.trim());
    if (!theirs.includes(ours)) {
      warn(set('listen_addr') ? 'listen_addr' : 'listen_port',
        `listen_addr/listen_port (${ours}) not used under haraka -c: Haraka listens on ${haraka.listen} (config/smtp.ini [main] listen)`,
        lines.listen_addr ?? lines.listen_port);
    }
  }
  if (set('num_proc') && config.num_proc !== haraka.nodes) {
    warn('num_proc', `num_proc = ${config.num_proc} not used under haraka -c: `
      + `Haraka runs ${haraka.nodes} worker process(es) (config/smtp.ini [main] nodes)`);
  }
  if (config.add_header_received !== haraka.addReceived) {
    warn('add_header_received',
      `add_header_received = ${config.add_header_received ? 'yes' : 'no'}${set('add_header_received') ? '' : ' (the default)'} `
      + 'not used under haraka -c: '
      + `Haraka ${haraka.addReceived ? 'adds' : 'does not add'} its Received: line `
      + `(config/connection.ini [headers] add_received = ${haraka.addReceived})`);
  }
  if (set('proxy_hosts') && config.proxy_hosts.join(',') !== haraka.proxyHosts.join(',')) {
    warn('proxy_hosts', `proxy_hosts = ${config.proxy_hosts.join(',')} not used under haraka -c: `
      + `Haraka takes PROXY from ${haraka.proxyHosts.join(',') || 'no host'} (config/connection.ini [haproxy] hosts[], as /32 or /128)`);
  }
  if (haraka.maxBytes > 0) {
    warn('message_size_limit', `Haraka's own size limit is set (config/connection.ini [max] bytes = ${haraka.maxBytes}): `
      + 'Haraka refuses a larger SIZE= or message itself with "550 Message too big!" (no enhanced code, 550 instead of 552). '
      + `Set it to 0: message_size_limit (${config.message_size_limit}) and the server's SIZE limit messages with 552 5.3.4`);
  }
  if (haraka.lineLength < LINE_LENGTH_SETTING || !haraka.postel) {
    out.push({
      severity: 'warning', file,
      message: 'Haraka refuses commands the mail server (Postfix) takes: '
        + [
          haraka.lineLength < LINE_LENGTH_SETTING
            ? `a command line over ${haraka.lineLength - 2} characters (a RCPT with DSN's ORCPT may be 1012) `
              + 'gets "521 Command line too long"'
            : '',
          haraka.postel ? '' : 'an address with a local part over 64 octets (VERP, SRS bounce addresses) gets 501',
        ].filter(Boolean).join('; ')
        + `. The launcher sets config/connection.ini [max] line_length = ${LINE_LENGTH_SETTING} and [main] postel = true`,
    });
  }
  if (set('daemon_user')) {
    warn('daemon_user', `daemon_user = ${config.daemon_user} not used under haraka -c: `
      + "Haraka's own user and group settings (config/smtp.ini [main] user, group) decide");
  }
  if (set('log_file')) {
    warn('log_file', `log_file = ${config.log_file} not used under haraka -c: `
      + "Haraka's log goes where Haraka's stdout goes (config/log.ini)");
  }
  out.push(...pluginListDiagnostics(config, lines, file, haraka.plugins));
  return out;
}

/**
 * What config/plugins means for esets.cfg, in both deployments (the launcher runs its Haraka config
 * folder's list too): esets_policy missing is an error (nothing would be scanned), esets_forward without
 * server_addr/server_port an error, two delivery paths and options no listed plugin applies are warnings.
 */
export function pluginListDiagnostics(
  config: EsetsConfig, lines: Partial<Record<OptionName, number>>, file: string, plugins: readonly string[],
): Diagnostic[] {
  const out: Diagnostic[] = [];
  const warn = (key: OptionName, message: string, line = lines[key]): void => {
    out.push({ severity: 'warning', file, line, key, message });
  };
  const set = (key: OptionName): boolean => lines[key] !== undefined;
  const listed = (name: string): boolean => plugins.some((entry) => ourPluginName(entry) === name);
  if (listed('esets_forward')) {
    for (const key of ['server_addr', 'server_port'] as const) {
      if (config[key] === undefined) {
        out.push({
          severity: 'error', file, key,
          message: `option '${key}' is not set in [smtp]: `
            + 'esets_forward (in config/plugins) forwards each message to the mail server it names',
        });
      }
    }
  }
  if (!listed('esets_connection_limits') && set('timeout_client')) {
    warn('timeout_client', `timeout_client = ${config.timeout_client} not applied: esets_connection_limits is not in config/plugins, `
      + "so Haraka's config/smtp.ini [main] inactivity_timeout decides");
  }
  if (!listed('esets_forward')) {
    for (const key of ['server_addr', 'server_port'] as const) {
      if (set(key)) {
        warn(key, `${key} = ${config[key]} not used: esets_forward is not in config/plugins `
          + '(the delivery plugin, e.g. queue/smtp_forward with its smtp_forward.ini, decides the server)');
      }
    }
  }
  if (!listed('esets_forward')) {
    for (const key of ['helo_name', 'server_trusts_relay'] as const) {
      if (set(key)) {
        warn(key, `${key} not used: esets_forward is not in config/plugins (the delivery plugin talks to the server its own way)`);
      }
    }
  }
  const otherQueues = plugins.filter((entry) => entry.startsWith('queue/'));
  if (listed('esets_forward') && otherQueues.length) {
    out.push({
      severity: 'warning', file,
      message: `${otherQueues.join(', ')} in config/plugins beside esets_forward, which delivers each message itself: `
        + `${otherQueues.length > 1 ? 'they are' : 'it is'} never run (esets_forward answers the queue hook first); `
        + 'remove one of the two delivery paths (docs/haraka_c.md)',
    });
  }
  // our plugins missing from config/plugins: what they would have applied
  if (!listed('esets_policy')) {
    out.push({
      severity: 'error', file, key: 'action_av',
      message: 'esets_policy is not in config/plugins: no message would be scanned (Haraka is not started; list it, see docs/haraka_c.md)',
    });
  }
  if (!listed('esets_connection_limits')) {
    const keys = [
      'max_connections', 'max_connections_per_ip', 'message_size_limit', 'spool_min_free', 'client_min_rate', 'timeout_session',
    ] as const;
    for (const key of keys) {
      if (set(key)) warn(key, `${key} = ${config[key]} not applied: esets_connection_limits is not in config/plugins`);
    }
  }
  if (!listed('esets_user_config')) {
    for (const key of ['user_config', 'split_recipients', 'null_sender_matches_sender_sections', 'address_routing'] as const) {
      if (set(key)) warn(key, `${key} not applied: esets_user_config is not in config/plugins (no user section is chosen)`);
    }
  }
  if (!listed('esets_status') && set('http_listen')) {
    warn('http_listen', `http_listen = ${config.http_listen} not applied: esets_status is not in config/plugins (no /health, no /metrics)`);
  }
  if (CLAMD_PLUGIN_NAMES.some(listed) && set('daemon_sock_path')) {
    warn('daemon_sock_path', `daemon_sock_path = ${config.daemon_sock_path.join(',')} not used: `
      + 'haraka-plugin-clamd scans (config/clamd.ini [main] clamd_socket decides)');
  }
  return out;
}
