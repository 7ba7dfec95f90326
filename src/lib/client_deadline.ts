// The client's deadlines, as arithmetic (no I/O, no clock): everything is
// measured in the client's own time, i.e. while the relay waits on the client
// (the relay's waits on the server or a scanner never count).
//
// - a request (a command line, or a message from 354 to its final dot) must
//   arrive within timeout_client + bytes/client_min_rate seconds (Postfix's
//   smtpd_min_data_rate with smtpd_per_request_deadline);
// - a session takes at most timeout_session seconds of the client's time;
// - input the relay stops reading (its buffer is full, or the client does not
//   read the replies) may stay stuck for timeout_client seconds at most.

export interface ClientDeadlines {
  /** timeout_client, seconds (0: none) */
  timeoutClientS: number;
  /** client_min_rate, bytes per second (0: no request deadline) */
  minRate: number;
  /** timeout_session, seconds (0: none) */
  sessionS: number;
}

/** How much of its own time the client has used. */
export interface ClientTime {
  /** since the session began */
  sessionMs: number;
  /** since the current request began */
  requestMs: number;
  /** bytes received since the current request began */
  requestBytes: number;
  /** while its input was stuck (not read, or replies not read), since the last progress */
  stalledMs: number;
}

export type Overdue = 'request' | 'session' | 'stalled';

/**
 * The request's budget in ms: timeout_client plus one second per client_min_rate bytes; Infinity when off,
 * and before the request's first byte (a silent client is timeout_client's: Haraka's inactivity timeout).
 */
export function requestBudgetMs(d: ClientDeadlines, bytes: number): number {
  if (d.minRate <= 0 || d.timeoutClientS <= 0 || bytes <= 0) return Infinity;
  return d.timeoutClientS * 1000 + (Math.max(0, bytes) / d.minRate) * 1000;
}

function sessionBudgetMs(d: ClientDeadlines): number {
  return d.sessionS > 0 ? d.sessionS * 1000 : Infinity;
}

function stallBudgetMs(d: ClientDeadlines): number {
  return d.timeoutClientS > 0 ? d.timeoutClientS * 1000 : Infinity;
}

/** Which bound the client has passed, if any (the session bound first: it is the one a client cannot reset). */
export function overdue(d: ClientDeadlines, t: ClientTime): Overdue | undefined {
  if (t.sessionMs >= sessionBudgetMs(d)) return 'session';
  if (t.stalledMs >= stallBudgetMs(d)) return 'stalled';
  if (t.requestMs >= requestBudgetMs(d, t.requestBytes)) return 'request';
  return undefined;
}

/**
 * Client time left before the first bound is passed, if no more bytes come
 * (more bytes only move the request deadline later); Infinity when none applies.
 * `stalled`: whether the stall clock runs now.
 */
export function msUntilOverdue(d: ClientDeadlines, t: ClientTime, stalled: boolean): number {
  const left = [
    sessionBudgetMs(d) - t.sessionMs,
    requestBudgetMs(d, t.requestBytes) - t.requestMs,
    stalled ? stallBudgetMs(d) - t.stalledMs : Infinity,
  ];
  return Math.max(0, Math.min(...left));
}

/** How far past bound `o` the client is, ms (0 when not past it). */
export function overdueByMs(d: ClientDeadlines, t: ClientTime, o: Overdue): number {
  const past = o === 'session' ? t.sessionMs - sessionBudgetMs(d)
    : o === 'stalled' ? t.stalledMs - stallBudgetMs(d)
      : t.requestMs - requestBudgetMs(d, t.requestBytes);
  return Number.isFinite(past) ? Math.max(0, past) : 0;
}

/**
 * Whether the session bound may close the session now. Never while the client
 * sends a message (client_min_rate bounds that; a message that meets it is
 * answered, or a slow link could never deliver a large one); between
 * transactions or while a command line is begun; inside a transaction
 * otherwise only once it is timeout_client past the bound, so that a client
 * cannot keep one transaction open (NOOP after NOOP) to escape the bound.
 */
export function sessionCutAllowed(
  d: ClientDeadlines, pastMs: number, at: { inTransaction: boolean; sendingMessage: boolean; sendingCommand: boolean },
): boolean {
  if (at.sendingMessage) return false;
  return !at.inTransaction || at.sendingCommand || pastMs >= d.timeoutClientS * 1000;
}

/** The 421 (lib/relay_replies) for each bound. */
export function overdueReply(o: Overdue): 'session_too_long' | 'client_not_reading' | 'client_too_slow' {
  switch (o) {
    case 'session': return 'session_too_long';
    case 'stalled': return 'client_not_reading';
    case 'request': return 'client_too_slow';
  }
}
