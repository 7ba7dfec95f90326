// The Handle Object Policy of esets_smtp(1): the action_av stage, then the
// action_as stage, each either a fixed action or "scan" and a verdict action.

import type { Diagnostic } from './diagnostics';
import { EsetsConfig, OptionName, VerdictAction } from './esets_options';
import type { ReplyRef } from './relay_replies';

export type AvOutcome =
  | { kind: 'clean' }
  | { kind: 'infected'; names: string[] }
  | { kind: 'cleaned'; removed: number; names: string[] }
  | { kind: 'not_scanned'; reason: string }
  /** the relay's MIME walk found a structure no RFC allows, which readers take apart differently (550 5.6.0) */
  | { kind: 'unreadable'; reason: string }
  /** the AV stage not applied to this message: the operator's own exclusion (haraka-plugin-clamd's skip) */
  | { kind: 'skipped'; reason: string }
  /** a part could not be written to the spool to be scanned (ENOSPC, EIO): the message fails, whatever the policy */
  | { kind: 'spool_error'; reason: string };

/** Whether clamd gave this message a verdict (X-Virus-Scanner: goes on scanned messages only). */
export function wasScanned(outcome: AvOutcome | undefined): boolean {
  return outcome !== undefined && (outcome.kind === 'clean' || outcome.kind === 'infected' || outcome.kind === 'cleaned');
}

export type AsOutcome =
  | { kind: 'ham'; score: number; threshold: number }
  | { kind: 'spam'; score: number; threshold: number }
  | { kind: 'not_scanned'; reason: string };

export interface StageDecision {
  action: VerdictAction;
  /** the option whose value decided; for a clean scan, the stage option itself */
  option: DecidingOption;
}

/** The virus stage: whether to scan at all, then what the verdict means. */
export function decideAv(config: EsetsConfig, outcome: AvOutcome | undefined): StageDecision {
  if (config.action_av !== 'scan') return { action: config.action_av, option: 'action_av' };
  if (!outcome) return { action: config.action_av_notscanned, option: 'action_av_notscanned' };
  switch (outcome.kind) {
    case 'clean': return { action: 'accept', option: 'action_av' };
    case 'infected': return { action: config.action_av_infected, option: 'action_av_infected' };
    case 'cleaned': return { action: config.action_av_deleted, option: 'action_av_deleted' };
    case 'not_scanned': return { action: config.action_av_notscanned, option: 'action_av_notscanned' };
    case 'unreadable': return { action: 'reject', option: 'message_format' };
    case 'skipped': return { action: 'accept', option: 'action_av' };
    case 'spool_error': return { action: 'defer', option: 'spool' };
  }
}

/** The spam stage, reached only when the virus stage accepted. */
export function decideAs(config: EsetsConfig, outcome: AsOutcome | undefined): StageDecision {
  if (config.action_as !== 'scan') return { action: config.action_as, option: 'action_as' };
  if (!outcome) return { action: config.action_as_notscanned, option: 'action_as_notscanned' };
  switch (outcome.kind) {
    case 'ham': return { action: 'accept', option: 'action_as' };
    case 'spam': return { action: config.action_as_spam, option: 'action_as_spam' };
    case 'not_scanned': return { action: config.action_as_notscanned, option: 'action_as_notscanned' };
  }
}

export function describeAv(outcome: AvOutcome | undefined, config: EsetsConfig): string {
  if (config.action_av !== 'scan') return `not scanned: action_av = ${config.action_av}`;
  if (!outcome) return 'not scanned: no scan result';
  switch (outcome.kind) {
    case 'clean': return 'clean';
    case 'infected': return `infected: ${outcome.names.join(', ')}`;
    case 'cleaned': return `cleaned: ${outcome.removed} part${outcome.removed === 1 ? '' : 's'} removed (${outcome.names.join(', ')})`;
    case 'not_scanned': return `not scanned: ${outcome.reason}`;
    case 'unreadable': return `not scanned: ${outcome.reason}`;
    case 'skipped': return `not scanned: ${outcome.reason}`;
    case 'spool_error': return `not scanned: ${outcome.reason}`;
  }
}

export function describeAs(outcome: AsOutcome | undefined, config: EsetsConfig): string {
  if (config.action_as !== 'scan') return `not scanned: action_as = ${config.action_as}`;
  if (!outcome) return 'not scanned: no scan result';
  switch (outcome.kind) {
    case 'ham': return `ham (score ${outcome.score}/${outcome.threshold})`;
    case 'spam': return `spam (score ${outcome.score}/${outcome.threshold})`;
    case 'not_scanned': return `not scanned: ${outcome.reason}`;
  }
}

/**
 * What decided a message's fate: an option of the policy, or a refusal before
 * it (`message_format`: a message read differently by scanners and readers;
 * `haraka`: Haraka itself refused it at the end of DATA; `policy_error`: the
 * policy could not run; `message_size`: larger than the relay takes; `spool`:
 * the relay could not keep it, the disk full or failing).
 */
export type DecidingOption = OptionName | 'message_format' | 'haraka' | 'policy_error' | 'message_size' | 'spool';

/** The policy's decision on one message, and what the client is told. */
export interface PolicyDecision {
  action: VerdictAction;
  option: DecidingOption;
  /** the verdict (or reason) the summary names: the log's, with the scanners' own words */
  verdict: string;
  /** the relay's reply (lib/relay_replies); null: the client gets the server's reply (accept) or Haraka's own */
  reply: ReplyRef | null;
}

/**
 * The whole cascade for one message: the AV stage, then the AS stage only if
 * the AV stage accepted (`as` is the spam outcome, consulted only then); the
 * verdict named is the deciding stage's.
 */
export function decideMessage(config: EsetsConfig, av: AvOutcome | undefined, as: AsOutcome | undefined): PolicyDecision {
  if (config.action_av === 'scan' && av?.kind === 'unreadable') return refuseUnreadable(av.reason);
  if (config.action_av === 'scan' && av?.kind === 'spool_error') return spoolFailed(av.reason);
  const avDecision = decideAv(config, av);
  if (avDecision.action !== 'accept') return { ...avDecision, verdict: describeAv(av, config), reply: verdictReply(avDecision, av) };
  const asDecision = decideAs(config, as);
  return { ...asDecision, verdict: describeAs(as, config), reply: verdictReply(asDecision, av) };
}

/**
 * The reply for a stage's decision: the verdict class in generic words, and
 * the names a scanner found (they tell the sender what to remove); never the
 * reason a scan failed (a scanner's address, an errno: the log has it).
 */
export function verdictReply(d: StageDecision, av?: AvOutcome): ReplyRef | null {
  if (d.action === 'accept') return null;
  if (d.action === 'discard') return { kind: 'discarded' };
  const reject = d.action === 'reject';
  switch (d.option) {
    case 'action_av_infected':
    case 'action_av_deleted': {
      const names = av?.kind === 'infected' || av?.kind === 'cleaned' ? av.names : [];
      if (!names.length) return { kind: reject ? 'reject_by_policy' : 'defer_by_policy' };
      // av_banned_types: the scan names a banned attachment Banned.TYPE
      const banned = names.every((n) => n.startsWith('Banned.'));
      const kind = banned ? (reject ? 'reject_banned' : 'defer_banned') : (reject ? 'reject_virus' : 'defer_virus');
      return { kind, detail: names.join(', ') };
    }
    case 'action_av_notscanned': return { kind: reject ? 'reject_not_scanned' : 'defer_not_scanned' };
    case 'action_as_spam': return { kind: reject ? 'reject_spam' : 'defer_spam' };
    case 'action_as_notscanned': return { kind: reject ? 'reject_spam_not_scanned' : 'defer_spam_not_scanned' };
    default: return { kind: reject ? 'reject_by_policy' : 'defer_by_policy' };
  }
}

/** Why the relay stopped keeping a message as it arrived (io/captured_message): it is answered, never scanned or sent. */
export type CaptureFailure =
  | { kind: 'too_big'; limit: number }
  | { kind: 'spool_error'; reason: string };

export function refuseCaptureFailure(failure: CaptureFailure): PolicyDecision {
  return failure.kind === 'too_big' ? refuseTooBig(failure.limit) : spoolFailed(failure.reason);
}

/** A message over the size the relay advertised (its own limit, or the server's less room): never stored whole, never scanned. */
export function refuseTooBig(limit: number): PolicyDecision {
  return { action: 'reject', option: 'message_size', verdict: `message larger than ${limit} bytes`, reply: { kind: 'too_big' } };
}

/** The message could not be kept to be scanned and sent (a spool write failed): the client sends it again later. */
export function spoolFailed(reason: string): PolicyDecision {
  return { action: 'defer', option: 'spool', verdict: reason, reply: { kind: 'spool_full' } };
}

/** A message refused before any scan because scanners and mail readers would read it differently. */
export function refuseUnreadable(reason: string): PolicyDecision {
  return { action: 'reject', option: 'message_format', verdict: reason, reply: { kind: 'malformed', detail: reason } };
}

/** The policy could not run (no captured message, an unexpected error): the client sends it again. */
export function policyFailed(reason: string): PolicyDecision {
  return { action: 'defer', option: 'policy_error', verdict: reason, reply: { kind: 'scan_failed' } };
}

/**
 * The quarantine could not keep a message the policy refused or dropped (or
 * the original of a cleaned one): deferred, the client keeps it; the option
 * that decided and the verdict stay what they were (the log says both).
 */
export function quarantineFailed(decision: PolicyDecision): PolicyDecision {
  return { ...decision, action: 'defer', reply: { kind: 'quarantine_failed' } };
}

/** A message Haraka itself refused at the end of DATA (its size limit, a Received: loop), before the policy ran. */
export function refusedByHaraka(replyCode: number): PolicyDecision | undefined {
  // Haraka's own reply is the client's
  if (replyCode >= 500 && replyCode < 600) return { action: 'reject', option: 'haraka', verdict: 'refused by Haraka', reply: null };
  if (replyCode >= 400 && replyCode < 500) return { action: 'defer', option: 'haraka', verdict: 'refused by Haraka', reply: null };
  return undefined;
}

/**
 * A load warning: with action_av_notscanned = accept, a message over
 * av_scan_obj_max_size is delivered without a virus scan: a virus padded past
 * the limit passes. Said where the configuration is read, naming both options;
 * for a user section (`section`), where that section is.
 */
export function unscannedPassDiagnostics(
  config: EsetsConfig, file: string, lines: Partial<Record<OptionName, number>>, section?: string,
): Diagnostic[] {
  if (config.action_av !== 'scan' || config.action_av_notscanned !== 'accept' || config.av_scan_obj_max_size <= 0) return [];
  const limit = config.av_scan_obj_max_size;
  return [{
    severity: 'warning', file, line: lines.action_av_notscanned ?? lines.av_scan_obj_max_size, key: 'action_av_notscanned',
    message: `${section ? `[${section}]: ` : ''}action_av_notscanned = accept with av_scan_obj_max_size = ${limit}: `
      + `a message over ${limit} bytes is delivered without a virus scan (a virus padded past the limit passes), as is one `
      + 'clamd cannot scan; set action_av_notscanned = defer or reject, or av_scan_obj_max_size = 0',
  }];
}

/** The options that decide whether unscannedPassDiagnostics speaks: a user section setting one is checked on its own. */
export const UNSCANNED_PASS_OPTIONS: readonly OptionName[] = ['action_av', 'action_av_notscanned', 'av_scan_obj_max_size'];
