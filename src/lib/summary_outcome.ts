// What the summary line says about a message's delivery, and its priority
// (docs/logging.md): every outcome the policy or the mail server chose
// (accept, reject, defer, discard, a server's refusal) is NOTICE; WARNING is
// kept for the relay's own failures, so `journalctl -p warning` shows what an
// operator must look at, not good mail. Whoever delivers: esets_forward says
// what the server did; another queue plugin (queue/smtp_forward) is read from
// Haraka's own queue result.

/** what the mail server did with the message (absent: not sent) */
export type ServerOutcome = 'accepted' | 'refused' | 'failed' | 'unknown';

/** Haraka's queue result (transaction.results 'queue'): `pass` when a queue plugin said OK, `fail` when it refused. */
export interface QueueResult {
  pass?: unknown[];
  fail?: unknown[];
}

/** The text of a queue plugin's answer (smtp_forward passes the server's reply lines): one line. */
export function queueAnswerText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const text = Array.isArray(value) ? value.map(String).join(' ') : String(value);
  return text.trim() || undefined;
}

/** what Haraka stores as the queue result of a queue plugin that timed out (plugins.js) */
const HARAKA_PLUGIN_TIMEOUT = 'plugin timeout';

/**
 * What the server did with a message the policy accepted and another queue
 * plugin delivered: its queue result when it gave one; a client told 4xx/5xx
 * with none (the plugin could not reach the server: Haraka's "Queuing declined")
 * is a failed delivery. Undefined when no delivery was tried.
 */
export function queueOutcome(result: QueueResult | undefined, toldCode: number): ServerOutcome | undefined {
  if (result?.pass?.length) return 'accepted';
  // Haraka's own words when the queue plugin never answered (its server unreachable): not the server's refusal
  if (result?.fail?.length) return result.fail.some((f) => String(f) === HARAKA_PLUGIN_TIMEOUT) ? 'failed' : 'refused';
  if (toldCode >= 400) return 'failed';
  return undefined;
}

/** The server's queue id in its answer (`250 2.0.0 Ok: queued as 4Xy1`), as Postfix, Exim and Sendmail say it. */
export function queueIdOf(reply: string | undefined): string | undefined {
  return reply ? /\bqueued as:? ?([A-Za-z0-9][A-Za-z0-9._-]*)/i.exec(reply)?.[1] : undefined;
}

/**
 * A verdict that says the scanner could not be used (down, timed out, hung,
 * dropped the connection): the relay's failure, unlike a message the scanner
 * could not look into (an encrypted archive, a limit), which is the content's.
 */
const SCANNER_FAILED = new RegExp([
  '^not scanned: (?:',
  'clamd unavailable',
  '|(?:clamd|spamd) \\S+ (?:did not answer|does not answer)',
  '|clamd closed the connection without a verdict',
  '|(?:clamd|spamd) \\S+: (?!Heuristics)',
  '|clamd is slower than the client',
  '|scanning took longer',
  ')',
].join(''));

export function scannerFailed(verdict: string | undefined): boolean {
  return verdict !== undefined && SCANNER_FAILED.test(verdict);
}

export interface SummaryOutcome {
  /** the option (or refusal) that decided */
  option: string;
  av?: string;
  as?: string;
  server?: ServerOutcome;
  /** the quarantine entry's id, or 'failed' */
  quarantine?: string;
}

/** The options whose decision is a failure of the relay itself (its spool, its own error). */
const RELAY_FAILURE_OPTIONS = new Set(['spool', 'policy_error']);

/**
 * WARNING: the relay failed the message (a scanner unavailable or too slow,
 * the spool full, its own error, the server lost or its answer lost);
 * NOTICE for every decision of the policy or the server.
 */
export function isRelayFailure(o: SummaryOutcome): boolean {
  return RELAY_FAILURE_OPTIONS.has(o.option) || scannerFailed(o.av) || scannerFailed(o.as)
    || o.server === 'failed' || o.server === 'unknown' || o.quarantine === 'failed';
}
