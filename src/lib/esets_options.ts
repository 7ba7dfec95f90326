// Every option esets_smtp understands: its type, default, allowed values and
// where it may appear. The typed EsetsConfig is what the rest of the relay reads.

import { isIP } from 'node:net';
import { BANNED_TYPE_NAMES } from './banned_types';
import { ADDRESS_ROUTING, AddressRouting } from './delivery_readings';

/** the most timeout_message may be: under RFC 5321's 600 s for the end-of-data answer (lib/timeout_budget) */
export const MAX_TIMEOUT_MESSAGE_S = 590;

export type AvAction = 'accept' | 'scan' | 'defer' | 'discard' | 'reject';
export type VerdictAction = 'accept' | 'defer' | 'discard' | 'reject';
export type CleanMode = 'none' | 'standard' | 'strict' | 'rigorous' | 'delete';
export type SyslogFacility = 'none' | 'daemon' | 'mail' | `local${0 | 1 | 2 | 3 | 4 | 5 | 6 | 7}`;
export type SyslogClass = 'error' | 'warning' | 'summary' | 'info' | 'debug';

export interface EsetsConfig {
  // [smtp] private options (esets_smtp(1))
  agent_enabled: boolean;
  num_proc: number;
  num_thrd: number;
  listen_addr: string | undefined;
  listen_port: number | undefined;
  server_addr: string | undefined;
  server_port: number | undefined;
  timeout_client: number;
  /** extension: scanning and the mail server's answer to a message, from the final dot, seconds */
  timeout_message: number;
  add_header_xvirus: boolean;
  add_header_received: boolean;
  user_config: string | undefined;
  /** extension: answer 451 4.5.3 to a recipient whose user section differs from the first one's */
  split_recipients: boolean;
  /** extension: no keeps the null sender <> (bounces) out of user sections that name a sender */
  null_sender_matches_sender_sections: boolean;
  /** extension: routing in a local part (%, !, quoted @) read under different user sections: refused, or the delivered one's */
  address_routing: AddressRouting;
  // module common options (esets.cfg(5))
  action_av: AvAction;
  action_av_infected: VerdictAction;
  action_av_notscanned: VerdictAction;
  action_av_deleted: VerdictAction;
  action_as: AvAction;
  action_as_spam: VerdictAction;
  action_as_notscanned: VerdictAction;
  syslog_facility: SyslogFacility;
  syslog_class: SyslogClass[];
  // scanner common options
  av_clean_mode: CleanMode;
  av_scan_obj_files: boolean;
  av_scan_obj_archives: boolean;
  av_scan_obj_emails: boolean;
  av_scan_obj_sfx: boolean;
  av_scan_obj_runtime_packers: boolean;
  av_scan_obj_max_size: number;
  av_scan_obj_timeout: number;
  av_scan_obj_max_nesting: number;
  av_scan_app_unwanted: boolean;
  av_scan_app_unsafe: boolean;
  av_scan_pattern: boolean;
  av_scan_heur: boolean;
  av_scan_adv_heur: boolean;
  av_scan_smart: boolean;
  /** a message stopped as infected or banned (or the original of a cleaned one) is kept in daemon_quarantine */
  av_quarantine_enabled: boolean;
  // [global] options this relay reads
  daemon_sock_path: string[];
  /** ESETS [global]: the quarantine folder (relative: from esets.cfg's folder) */
  daemon_quarantine: string;
  /** extension: seconds a quarantined message is kept (0: no age limit) */
  quarantine_max_age: number;
  /** extension: bytes the quarantine may take, the oldest removed first (0: no limit) */
  quarantine_max_size: number;
  // extensions of esets-relay
  spamd_addr: string;
  spamd_max_size: number;
  spamd_timeout: number;
  syslog_socket: string;
  /** extension: no means the mail server treats the relay's address as untrusted (XCLIENT not required) */
  server_trusts_relay: boolean;
  /** extension: the relay's own EHLO name to the mail server (before XCLIENT); undefined: Haraka's host name */
  helo_name: string | undefined;
  /** extension: clamd.conf checked at start for the settings the relay needs */
  clamd_config: string;
  /** extension: most infected parts cleaning will scan one by one; more is "not scanned" */
  av_clean_max_parts: number;
  /** extension: file types refused as infected (Banned.<type>), names of lib/banned_types */
  av_banned_types: string[];
  /** extension: concurrent client connections per process (0: no cap) */
  max_connections: number;
  /** extension: concurrent client connections from one address per process (0: no cap) */
  max_connections_per_ip: number;
  /** extension: the largest message the relay takes, bytes (0: the mail server's limit only) */
  message_size_limit: number;
  /** extension: free space the spool keeps; below it MAIL is answered 452 4.3.1, bytes (0: none) */
  spool_min_free: number;
  /** extension: slowest the client may send a command or a message, bytes per second (0: no floor) */
  client_min_rate: number;
  /** extension: the most of the client's own time one session may take, seconds (0: no bound) */
  timeout_session: number;
  /** extension: the load balancers whose connections start with a PROXY line (address/prefix each) */
  proxy_hosts: string[];
  /** ESETS [global]: who the workers run as (unset: the user that started the relay) */
  daemon_user: string | undefined;
  /** extension: the file the relay logs to instead of stdout (HUP reopens it) */
  log_file: string | undefined;
  /** extension: the manager's HTTP listener for /health and /metrics (off when unset) */
  http_listen: string | undefined;
  /** extension: after TERM, seconds new connections are still taken while /health answers 503 (with http_listen) */
  drain_grace: number;
}

export type OptionName = keyof EsetsConfig;
export type OptionValue = EsetsConfig[OptionName];

/**
 * agent: [smtp] and the command line only; common: [global], [smtp], user
 * sections and the command line; relay: [global], [smtp] and the command line
 * (not user sections: how a section is chosen cannot depend on the section);
 * global: [global] only.
 */
export type OptionScope = 'agent' | 'common' | 'relay' | 'global';

export type OptionType =
  | { kind: 'bool' }
  | { kind: 'int'; min: number; max: number }
  | { kind: 'string' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'enum_list'; values: readonly string[] }
  /** comma-separated names of a table, possibly none */
  | { kind: 'name_list'; values: readonly string[] }
  | { kind: 'address_list' }
  | { kind: 'network_list' }
  | { kind: 'host_port' };

export interface OptionSpec {
  type: OptionType;
  scope: OptionScope;
  /** what the option does in this relay, for --help and the README */
  help: string;
}

const BOOL = { kind: 'bool' } as const;
const STRING = { kind: 'string' } as const;
const int = (min: number, max: number): OptionType => ({ kind: 'int', min, max });
const AV_ACTIONS = ['accept', 'scan', 'defer', 'discard', 'reject'] as const;
const VERDICT_ACTIONS = ['accept', 'defer', 'discard', 'reject'] as const;
const PORT = int(1, 65535);
const NO_LIMIT = 2 ** 53;

export const OPTION_SPECS: Record<OptionName, OptionSpec> = {
  agent_enabled: { type: BOOL, scope: 'agent', help: 'must be yes for the relay to start' },
  num_proc: { type: int(1, 64), scope: 'agent', help: 'Haraka worker processes (smtp.ini nodes)' },
  num_thrd: { type: int(1, 1024), scope: 'agent', help: 'accepted; Node serves all sessions of a process on one event loop' },
  listen_addr: { type: STRING, scope: 'agent', help: 'address the relay listens on' },
  listen_port: { type: PORT, scope: 'agent', help: 'port the relay listens on' },
  server_addr: { type: STRING, scope: 'agent', help: 'mail server the relay forwards to' },
  server_port: { type: PORT, scope: 'agent', help: 'port of the mail server' },
  timeout_client: { type: int(1, 86400), scope: 'agent', help: 'client inactivity timeout, seconds' },
  timeout_message: {
    type: int(10, MAX_TIMEOUT_MESSAGE_S), scope: 'agent',
    help: "longest wait for the answer to a message (scanners, then the mail server), seconds; under RFC 5321's 600 (extension)",
  },
  add_header_xvirus: { type: BOOL, scope: 'common', help: 'add X-Virus-Scanner: to forwarded messages' },
  add_header_received: { type: BOOL, scope: 'agent', help: "add the relay's Received: line" },
  user_config: { type: STRING, scope: 'agent', help: 'file of user-specific sections, relative to esets.cfg' },
  split_recipients: {
    type: BOOL, scope: 'agent', help: "defer (451 4.5.3) a recipient whose user section differs from the first one's (extension)",
  },
  null_sender_matches_sender_sections: {
    type: BOOL, scope: 'relay',
    help: "yes (the manual): the null sender <> of bounces matches every user section's sender part; "
      + 'no: only sections without one (extension)',
  },
  address_routing: {
    type: { kind: 'enum', values: ADDRESS_ROUTING }, scope: 'relay',
    help: 'a recipient or sender whose routing in the local part (%, !, quoted @) reads under different user sections: '
      + "refuse (550 5.1.3 / 5.1.7), or delivered: the section of the address the server resolves it to (extension)",
  },
  action_av: { type: { kind: 'enum', values: AV_ACTIONS }, scope: 'common', help: 'virus stage: scan, or a fixed action' },
  action_av_infected: { type: { kind: 'enum', values: VERDICT_ACTIONS }, scope: 'common', help: 'infected message' },
  action_av_notscanned: {
    type: { kind: 'enum', values: VERDICT_ACTIONS }, scope: 'common', help: 'message the virus scanner could not scan',
  },
  action_av_deleted: {
    type: { kind: 'enum', values: VERDICT_ACTIONS }, scope: 'common', help: 'message whose infected parts were removed',
  },
  action_as: { type: { kind: 'enum', values: AV_ACTIONS }, scope: 'common', help: 'spam stage: scan, or a fixed action' },
  action_as_spam: { type: { kind: 'enum', values: VERDICT_ACTIONS }, scope: 'common', help: 'spam message' },
  action_as_notscanned: {
    type: { kind: 'enum', values: VERDICT_ACTIONS }, scope: 'common', help: 'message the spam scanner could not scan',
  },
  syslog_facility: {
    type: {
      kind: 'enum',
      values: ['none', 'daemon', 'mail', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'],
    },
    scope: 'common', help: "syslog facility; none logs to Haraka's log",
  },
  syslog_class: {
    type: { kind: 'enum_list', values: ['error', 'warning', 'summary', 'info', 'debug'] },
    scope: 'common', help: 'classes of messages logged, ":"-separated',
  },
  av_clean_mode: {
    type: { kind: 'enum', values: ['none', 'standard', 'strict', 'rigorous', 'delete'] },
    scope: 'common', help: 'removal of infected parts',
  },
  av_scan_obj_files: { type: BOOL, scope: 'common', help: 'accepted; clamd scans all content' },
  av_scan_obj_archives: { type: BOOL, scope: 'common', help: "accepted; archive scanning is clamd.conf's ScanArchive" },
  av_scan_obj_emails: { type: BOOL, scope: 'common', help: "accepted; clamd.conf's ScanMail" },
  av_scan_obj_sfx: { type: BOOL, scope: 'common', help: 'accepted without effect' },
  av_scan_obj_runtime_packers: { type: BOOL, scope: 'common', help: 'accepted without effect' },
  av_scan_obj_max_size: { type: int(0, NO_LIMIT), scope: 'common', help: 'largest message scanned, bytes (0: no limit of ours)' },
  av_scan_obj_timeout: { type: int(0, 86400), scope: 'common', help: 'scan time limit, seconds (0: default)' },
  av_scan_obj_max_nesting: { type: int(0, 1000), scope: 'common', help: "accepted; clamd.conf's MaxRecursion" },
  av_scan_app_unwanted: { type: BOOL, scope: 'common', help: "accepted; clamd.conf's DetectPUA" },
  av_scan_app_unsafe: { type: BOOL, scope: 'common', help: 'accepted without effect' },
  av_scan_pattern: { type: BOOL, scope: 'common', help: 'accepted without effect' },
  av_scan_heur: { type: BOOL, scope: 'common', help: "accepted; clamd.conf's HeuristicAlerts" },
  av_scan_adv_heur: { type: BOOL, scope: 'common', help: 'accepted without effect' },
  av_scan_smart: { type: BOOL, scope: 'common', help: 'accepted without effect' },
  av_quarantine_enabled: {
    type: BOOL, scope: 'common',
    help: 'keep a message rejected or discarded as infected or banned, and the original of a cleaned one, in daemon_quarantine',
  },
  daemon_quarantine: {
    type: STRING, scope: 'global', help: "the quarantine folder, relative to esets.cfg's folder (esets_quar reads it)",
  },
  quarantine_max_age: {
    type: int(0, 10 * 366 * 86400), scope: 'relay', help: 'seconds a quarantined message is kept (0: no age limit; extension)',
  },
  quarantine_max_size: {
    type: int(0, NO_LIMIT), scope: 'relay', help: 'bytes the quarantine may take, the oldest removed first (0: no limit; extension)',
  },
  daemon_sock_path: {
    type: { kind: 'address_list' }, scope: 'global', help: 'clamd address(es): unix socket path or host:port, comma-separated',
  },
  spamd_addr: { type: STRING, scope: 'global', help: 'spamd address, host:port (extension)' },
  spamd_max_size: { type: int(0, NO_LIMIT), scope: 'common', help: 'largest message given to spamd, bytes (0: no limit; extension)' },
  spamd_timeout: { type: int(1, 3600), scope: 'common', help: 'seconds to wait for spamd (extension)' },
  syslog_socket: { type: STRING, scope: 'global', help: 'the syslog socket, when syslog_facility is not none (extension)' },
  server_trusts_relay: {
    type: BOOL, scope: 'agent', help: "yes: the mail server trusts the relay's address, so XCLIENT is required (extension)",
  },
  helo_name: { type: STRING, scope: 'agent', help: "the relay's own EHLO name to the mail server, a fully qualified name (extension)" },
  clamd_config: {
    type: STRING, scope: 'global',
    help: "the clamd.conf of the clamd in daemon_sock_path, checked at start (default: Debian's, for Debian's socket only) (extension)",
  },
  av_clean_max_parts: {
    type: int(1, 100_000), scope: 'common', help: 'most MIME parts cleaning scans one by one; more: the message stays infected (extension)',
  },
  av_banned_types: {
    type: { kind: 'name_list', values: BANNED_TYPE_NAMES }, scope: 'common',
    help: 'file types refused as infected (Banned.<type>), by content and attachment name, comma-separated; none by default (extension)',
  },
  max_connections: { type: int(0, 1_000_000), scope: 'agent', help: 'concurrent client connections per process, 0: no cap (extension)' },
  max_connections_per_ip: {
    type: int(0, 1_000_000), scope: 'agent', help: 'concurrent connections from one client address per process, 0: no cap (extension)',
  },
  message_size_limit: {
    type: int(0, NO_LIMIT), scope: 'agent',
    help: "largest message taken, bytes; the SIZE advertised is the lower of it and the mail server's, less room for the relay's fields "
      + "(0: the server's only; extension)",
  },
  spool_min_free: {
    type: int(0, NO_LIMIT), scope: 'agent',
    help: 'free space kept on the spool filesystem, bytes; below it MAIL gets 452 4.3.1 (0: none; extension)',
  },
  client_min_rate: {
    type: int(0, NO_LIMIT), scope: 'agent',
    help: 'slowest a client may send one command or message, bytes per second, beyond timeout_client (0: no floor; extension)',
  },
  timeout_session: {
    type: int(0, 7 * 86400), scope: 'agent',
    help: "most of the client's own time (not the relay's waits) one session may take, seconds (0: no bound; extension)",
  },
  daemon_user: {
    type: STRING, scope: 'global',
    help: 'the user the worker processes run as (the manager binds the listener); unset: the user that started the relay',
  },
  log_file: { type: STRING, scope: 'agent', help: 'the file the launcher logs to instead of stdout; HUP reopens it (extension)' },
  http_listen: {
    type: { kind: 'host_port' }, scope: 'agent',
    help: "the manager's HTTP listener for /health and /metrics, host:port; off when unset (extension)",
  },
  drain_grace: {
    type: int(0, 600), scope: 'agent',
    help: 'after TERM, seconds the listener still takes new connections while /health answers 503, '
      + 'so a balancer moves new clients away first; only with http_listen (extension)',
  },
  proxy_hosts: {
    type: { kind: 'network_list' }, scope: 'agent',
    help: 'load balancers that send the PROXY protocol, comma-separated addresses or networks (extension)',
  },
};

export const DEFAULT_CONFIG: Readonly<EsetsConfig> = Object.freeze<EsetsConfig>({
  agent_enabled: false,
  num_proc: 1,
  num_thrd: 2,
  listen_addr: undefined,
  listen_port: undefined,
  server_addr: undefined,
  server_port: undefined,
  timeout_client: 30,
  timeout_message: 540,
  add_header_xvirus: true,
  add_header_received: false,
  user_config: undefined,
  split_recipients: false,
  null_sender_matches_sender_sections: true,
  address_routing: 'refuse',
  action_av: 'scan',
  action_av_infected: 'reject',
  action_av_notscanned: 'defer',
  action_av_deleted: 'accept',
  action_as: 'accept',
  action_as_spam: 'reject',
  action_as_notscanned: 'accept',
  syslog_facility: 'none',
  syslog_class: ['error', 'warning', 'summary'],
  av_clean_mode: 'none',
  av_scan_obj_files: true,
  av_scan_obj_archives: true,
  av_scan_obj_emails: true,
  av_scan_obj_sfx: true,
  av_scan_obj_runtime_packers: true,
  av_scan_obj_max_size: 0,
  av_scan_obj_timeout: 0,
  av_scan_obj_max_nesting: 20,
  av_scan_app_unwanted: false,
  av_scan_app_unsafe: false,
  av_scan_pattern: true,
  av_scan_heur: true,
  av_scan_adv_heur: true,
  av_scan_smart: true,
  av_quarantine_enabled: false,
  daemon_sock_path: ['/run/clamav/clamd.ctl'],
  // systemd's StateDirectory=esets-relay
  daemon_quarantine: '/var/lib/esets-relay/quarantine',
  quarantine_max_age: 30 * 86400,
  quarantine_max_size: 1024 ** 3,
  spamd_addr: '127.0.0.1:783',
  spamd_max_size: 512 * 1024,
  spamd_timeout: 30,
  syslog_socket: '/dev/log',
  server_trusts_relay: true,
  helo_name: undefined,
  // unset: Debian's /etc/clamav/clamd.conf only for Debian's socket (lib/clamd_conf clamdConfFor)
  clamd_config: '',
  av_clean_max_parts: 100,
  av_banned_types: [],
  max_connections: 1000,
  max_connections_per_ip: 50,
  message_size_limit: 100 * 1024 * 1024,
  spool_min_free: 100 * 1024 * 1024,
  client_min_rate: 500,
  timeout_session: 3600,
  proxy_hosts: [],
  daemon_user: undefined,
  http_listen: undefined,
  drain_grace: 10,
  log_file: undefined,
});

/**
 * ESETS [global] options that belong to the ESETS daemon itself; a migrated
 * esets.cfg carries them, so they are accepted quietly and have no effect.
 */
export const ESETS_DAEMON_KEYS: ReadonlySet<string> = new Set([
  'base_dir', 'cache_dir', 'data_dir', 'lib_dir', 'lic_dir', 'run_dir', 'tmp_dir', 'conf_dir',
  'daemon_group', 'daemon_chroot', 'daemon_preload_modules',
  'daemon_event_cache', 'daemon_ipc', 'av_update_period', 'av_update_server', 'av_update_username',
  'av_update_password', 'av_mirror_enabled', 'av_mirror_dir', 'scan_log_level', 'license_warn_enabled',
]);

export function isOptionName(key: string): key is OptionName {
  return Object.prototype.hasOwnProperty.call(OPTION_SPECS, key);
}

const UNIT: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };
const TRUE_WORDS = new Set(['yes', 'true', 'on', '1']);
const FALSE_WORDS = new Set(['no', 'false', 'off', '0']);

export type ParsedValue = { ok: true; value: OptionValue } | { ok: false; expected: string };

/** Parses an integer with an optional K/M/G (1024-based) unit. */
export function parseIntWithUnit(raw: string): number | undefined {
  const m = /^(\d+)\s*([KMG]?)$/i.exec(raw.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNIT[m[2].toUpperCase()];
}

export function describeType(type: OptionType): string {
  switch (type.kind) {
    case 'bool': return 'yes or no';
    case 'int': return `an integer from ${type.min} to ${type.max === NO_LIMIT ? 'unlimited' : type.max} (K, M, G units allowed)`;
    case 'string': return 'a string';
    case 'enum': return `one of ${type.values.join(', ')}`;
    case 'enum_list': return `a ':'-separated list of ${type.values.join(', ')}`;
    case 'name_list': return `a comma-separated list (or "") of ${type.values.join(', ')}`;
    case 'address_list': return 'a unix socket path or host:port, comma-separated for several';
    case 'network_list': return 'IPv4 or IPv6 addresses or networks (address/prefix), comma-separated';
    case 'host_port': return 'host:port (an IPv6 address in brackets: [::1]:8025)';
  }
}

export function parseOptionValue(name: OptionName, raw: string): ParsedValue {
  const { type } = OPTION_SPECS[name];
  const text = raw.trim();
  const fail = (): ParsedValue => ({ ok: false, expected: describeType(type) });
  switch (type.kind) {
    case 'bool': {
      const word = text.toLowerCase();
      if (TRUE_WORDS.has(word)) return { ok: true, value: true };
      if (FALSE_WORDS.has(word)) return { ok: true, value: false };
      return fail();
    }
    case 'int': {
      const n = parseIntWithUnit(text);
      if (n === undefined || n < type.min || n > type.max) return fail();
      return { ok: true, value: n };
    }
    case 'string':
      return text === '' ? fail() : { ok: true, value: text };
    case 'enum': {
      const word = text.toLowerCase();
      return type.values.includes(word) ? { ok: true, value: word as OptionValue } : fail();
    }
    case 'enum_list': {
      const words = text.toLowerCase().split(':').map((w) => w.trim()).filter(Boolean);
      if (words.length === 0 || words.some((w) => !type.values.includes(w))) return fail();
      return { ok: true, value: words as SyslogClass[] };
    }
    case 'name_list': {
      const words = text.replace(/^"(.*)"$/, '$1').toLowerCase().split(/[,\s]+/).filter(Boolean);
      if (words.some((w) => !type.values.includes(w))) return fail();
      return { ok: true, value: [...new Set(words)] };
    }
    case 'address_list': {
      const addresses = text.split(/[,\s]+/).filter(Boolean);
      if (addresses.length === 0 || addresses.some((a) => !isSocketAddress(a))) return fail();
      return { ok: true, value: addresses };
    }
    case 'host_port':
      return parseHostPort(text) ? { ok: true, value: text } : fail();
    case 'network_list': {
      const networks = text.split(/[,\s]+/).filter(Boolean).map(parseNetwork);
      if (networks.length === 0 || networks.some((n) => n === undefined)) return fail();
      return { ok: true, value: networks as string[] };
    }
  }
}

/**
 * An address or network as `address/prefix`, the prefix always written: a
 * bare IPv6 address would otherwise mean its whole /64 to haraka-net-utils.
 */
export function parseNetwork(text: string): string | undefined {
  const m = /^\[?([0-9A-Fa-f:.]+?)\]?(?:\/(\d{1,3}))?$/.exec(text);
  if (!m) return undefined;
  const family = isIP(m[1]);
  if (family === 0) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) return undefined;
  return `${m[1].toLowerCase()}/${prefix}`;
}

/** A unix socket path (absolute) or host:port / [v6]:port. */
export function isSocketAddress(text: string): boolean {
  if (text.startsWith('/')) return true;
  return parseHostPort(text) !== undefined;
}

export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2], port };
}
