// The Handle Object Policy of esets_smtp(1): the action_av stage, then the
// action_as stage, each either a fixed action or "scan" and a verdict action.

import { EsetsConfig, OptionName, VerdictAction } from './esets_options';

export type AvOutcome =
  | { kind: 'clean' }
  | { kind: 'infected'; names: string[] }
  | { kind: 'cleaned'; removed: number; names: string[] }
  | { kind: 'not_scanned'; reason: string }
  /** the AV stage not applied to this message: the operator's own exclusion (haraka-plugin-clamd's skip) */
  | { kind: 'skipped'; reason: string };

/** Whether clamd gave this message a verdict (X-Virus-Scanner: goes on scanned messages only). */
export function wasScanned(outcome: AvOutcome | undefined): boolean {
  return outcome !== undefined && outcome.kind !== 'not_scanned' && outcome.kind !== 'skipped';
}

export type AsOutcome =
  | { kind: 'ham'; score: number; threshold: number }
  | { kind: 'spam'; score: number; threshold: number }
  | { kind: 'not_scanned'; reason: string };

export interface StageDecision {
  action: VerdictAction;
  /** the option whose value decided; for a clean scan, the stage option itself */
  option: OptionName;
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
    case 'skipped': return { action: 'accept', option: 'action_av' };
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

/**
 * The whole cascade for one message: the AV stage, then the AS stage only if
 * the AV stage accepted (`as` is the spam outcome, consulted only then).
 */
export function decidePolicy(config: EsetsConfig, av: AvOutcome | undefined, as: AsOutcome | undefined): StageDecision {
  const avDecision = decideAv(config, av);
  return avDecision.action === 'accept' ? decideAs(config, as) : avDecision;
}

export function describeAv(outcome: AvOutcome | undefined, config: EsetsConfig): string {
  if (config.action_av !== 'scan') return `not scanned: action_av = ${config.action_av}`;
  if (!outcome) return 'not scanned: no scan result';
  switch (outcome.kind) {
    case 'clean': return 'clean';
    case 'infected': return `infected: ${outcome.names.join(', ')}`;
    case 'cleaned': return `cleaned: ${outcome.removed} part${outcome.removed === 1 ? '' : 's'} removed (${outcome.names.join(', ')})`;
    case 'not_scanned': return `not scanned: ${outcome.reason}`;
    case 'skipped': return `not scanned: ${outcome.reason}`;
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

export interface PolicyReply {
  code: number;
  text: string;
}

/** What the client is told for a non-accept action; accept is the downstream server's own reply. */
/**
 * The verdict as the client may read it: without the scanners' addresses and
 * socket paths (the log keeps them).
 */
export function publicVerdict(verdict: string): string {
  return verdict
    .replace(/\b(clamd|spamd) (?:\/\S*?|\[[0-9A-Fa-f:.]+\]:\d+|[A-Za-z0-9.-]+:\d+)(?=[:\s)]|$):?/g, '$1')
    .replace(/\s\/[^\s)]+/g, '')
    .replace(/[\r\n]+/g, ' ');
}

export function replyFor(action: Exclude<VerdictAction, 'accept'>, verdict: string): PolicyReply {
  const why = publicVerdict(verdict);
  switch (action) {
    case 'reject': return { code: 550, text: `5.7.1 Message rejected (${why})` };
    case 'defer': return { code: 451, text: `4.7.1 Message deferred, try again later (${why})` };
    case 'discard': return { code: 250, text: '2.0.0 Message accepted' };
  }
}
