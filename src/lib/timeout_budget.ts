// Every time bound of the relay, in one place, derived from the options
// (docs/timeouts.md is this file as a table). The rule behind them: the
// client is timed out only for its own silence, and everything the relay
// waits for after the final dot (scanners, then the mail server) fits in
// timeout_message, under the 10 minutes RFC 5321 4.5.3.2.6 gives a client; so
// a client is answered before it gives up, and never told 4xx about a message
// the server then takes (a duplicate), except when the server's answer itself
// is lost ("outcome unknown").

import type { Diagnostic } from './diagnostics';
import { EsetsConfig, MAX_TIMEOUT_MESSAGE_S } from './esets_options';

/** RFC 5321 4.5.3.2.6: how long a client waits for the answer to its final dot */
export const RFC_END_OF_DATA_S = 600;

// the mail server
export const SERVER_CONNECT_MS = 5_000;
/** each command's reply (greeting, EHLO, XCLIENT, MAIL, RCPT, DATA, AUTH steps, VRFY...) */
export const SERVER_COMMAND_MS = 60_000;
/**
 * While the client sends its message and the relay scans it, the server's
 * transaction is idle (DATA goes only after the verdict): a NOOP this often
 * keeps it under the server's idle timeout (Postfix: 300 s), and few enough
 * (18 in the longest timeout_message) for Postfix's smtpd_junk_command_limit
 * (100; a server under stress, 10 s and 1, cannot be helped either way).
 */
export const SERVER_KEEPALIVE_MS = 30_000;
/** a NOOP answered slower than this: the server is in trouble (DATA waits for it) */
export const SERVER_KEEPALIVE_REPLY_MS = 10_000;
/** the client's QUIT waits this long for the server's goodbye */
export const SERVER_QUIT_MS = 5_000;
/** the forward-confirmed name lookup at connect (PTR, then A/AAAA) */
export const CLIENT_NAME_LOOKUP_MS = 3_000;

// clamd
export const CLAMD_CONNECT_MS = 2_000;
/** av_scan_obj_timeout = 0 */
export const CLAMD_DEFAULT_SCAN_S = 60;
/** a scan without a verdict this long asks its daemon for PONG (and again as long as it lasts) */
export const CLAMD_PROBE_AFTER_MS = 3_000;
export const CLAMD_PING_MS = 2_000;
/** a daemon that refused, died or hung is tried last for this long */
export const CLAMD_BACKOFF_MS = 30_000;
/** clamd's VERSION, asked at start and refreshed */
export const CLAMD_VERSION_MS = 2_000;

/** after scanning, the mail server always has at least this share of timeout_message */
const SERVER_SHARE_MS = 120_000;
/** Haraka's hook timeouts sit this far above the longest bound of the hook */
const HOOK_MARGIN_S = 30;

/** The bounds of one message (its effective configuration: a user section may change the scanners'). */
export interface MessageBudget {
  /** one clamd scan, counted from when the whole message is written to it */
  clamdScanMs: number;
  spamdMs: number;
  /** the longest the scanners may take, failover and cleaning included */
  scanningNeedMs: number;
  /** scanning as a whole, from the final dot: past it a scan still running counts as not scanned */
  scanningMs: number;
  /** scanning and the mail server's answer, from the final dot (timeout_message) */
  endOfDataMs: number;
}

export function messageBudget(config: EsetsConfig): MessageBudget {
  const clamdScanMs = (config.av_scan_obj_timeout || CLAMD_DEFAULT_SCAN_S) * 1000;
  const spamdMs = config.spamd_timeout * 1000;
  const endOfDataMs = config.timeout_message * 1000;
  // each daemon at most once per message, then cleaning (its part scans and rescan share one scan timeout)
  const av = config.action_av === 'scan'
    ? config.daemon_sock_path.length * (CLAMD_CONNECT_MS + clamdScanMs) + (config.av_clean_mode === 'none' ? 0 : clamdScanMs)
    : 0;
  const as = config.action_as === 'scan' ? spamdMs : 0;
  const scanningNeedMs = av + as;
  return {
    clamdScanMs, spamdMs, scanningNeedMs, scanningMs: Math.min(scanningNeedMs, endOfDataMs - serverShareMs(endOfDataMs)), endOfDataMs,
  };
}

function serverShareMs(endOfDataMs: number): number {
  return Math.min(SERVER_SHARE_MS, Math.floor(endOfDataMs / 2));
}

/** The longest one hook of esets_forward waits for the server: a MAIL that reopens the session (live()). */
export function longestSessionStepMs(): number {
  const open = CLIENT_NAME_LOOKUP_MS + SERVER_CONNECT_MS + 4 * SERVER_COMMAND_MS; // greeting, EHLO, XCLIENT, HELO again
  return open + 3 * SERVER_COMMAND_MS; // RSET, XFORWARD, MAIL
}

// the most timeout_message may be: its option's range (esets_options), under RFC 5321's 600 s
export { MAX_TIMEOUT_MESSAGE_S };

/**
 * Haraka's timeout for every hook of esets_policy and esets_forward: above all
 * of their own bounds for any timeout_message, so a live edit of it can never
 * let Haraka's generic "plugin timeout" answer first.
 */
export const HOOK_TIMEOUT_S = Math.ceil(Math.max(MAX_TIMEOUT_MESSAGE_S * 1000, longestSessionStepMs()) / 1000) + HOOK_MARGIN_S;

/** TERM: a session in progress may take one more client silence and a whole end of data to finish. */
export function drainMs(config: EsetsConfig): number {
  return (config.timeout_client + config.timeout_message) * 1000;
}

export interface StopTiming {
  /** after TERM, how long new connections are still taken while /health fails (a balancer moves away) */
  graceMs: number;
  /** then how long the sessions in progress may take to finish */
  drainMs: number;
}

/** The drain grace applies only where a balancer can learn of the stop: with /health (http_listen). */
export function stopTiming(config: EsetsConfig): StopTiming {
  return { graceMs: config.http_listen ? config.drain_grace * 1000 : 0, drainMs: drainMs(config) };
}

/** Milliseconds left until `deadline`, never below `floorMs`. */
export function remainingMs(deadline: number, floorMs = 1_000, now = Date.now()): number {
  return Math.max(floorMs, deadline - now);
}

/** A configuration whose scanners may need more than timeout_message leaves them. */
export function budgetDiagnostics(config: EsetsConfig, file: string, line?: number): Diagnostic[] {
  const budget = messageBudget(config);
  if (budget.scanningNeedMs <= budget.scanningMs) return [];
  const parts = [
    config.action_av === 'scan'
      ? `clamd ${budget.clamdScanMs / 1000} s x ${config.daemon_sock_path.length} daemon(s)`
        + `${config.av_clean_mode === 'none' ? '' : ' + cleaning'}`
      : '',
    config.action_as === 'scan' ? `spamd ${budget.spamdMs / 1000} s` : '',
  ].filter(Boolean);
  return [{
    severity: 'warning', file, line, key: 'timeout_message',
    message: `the scanners may need ${budget.scanningNeedMs / 1000} s (${parts.join(', ')}), more than the ${budget.scanningMs / 1000} s `
      + `timeout_message = ${config.timeout_message} leaves them `
      + `(the mail server keeps ${(budget.endOfDataMs - budget.scanningMs) / 1000} s): `
      + 'a scan still running then counts as not scanned',
  }];
}
