// haraka-plugin-clamd as the AV stage's source (DESIGN "Two ways to deploy"):
// its transaction results, read by the policy, as the verdict our own clamd
// client would have given. Its own rejections must be off (clamd.ini [reject]
// virus = false, error = false) for the policy to decide.

import type { AvOutcome } from './policy';

/** transaction.results.get('clamd'): each key a list of what the plugin added */
export interface ClamdPluginResults {
  pass?: unknown[];
  fail?: unknown[];
  err?: unknown[];
  skip?: unknown[];
}

/**
 * What clamd reports when it could not scan all of a message (AlertExceedsMax,
 * AlertEncrypted*): the plugin records these as `fail`, the policy's meaning
 * is "not scanned".
 */
const NOT_SCANNED_ALERT = /^Heuristics\.(Limits\.Exceeded|Encrypted)/;

/** the plugin's skip for a message over its clamd.ini max_size */
const SIZE_SKIP = /max size/i;

/**
 * A message without a header section (its first line is no field: readers take
 * it as body): Haraka takes every line before the first empty one as header, so
 * its copy, what haraka-plugin-clamd scans and a stock queue plugin sends, is
 * split otherwise than the readers will read it.
 */
export const HEADERLESS_IN_HARAKAS_COPY = 'no header section (the first line is not a header field): '
  + "Haraka's copy of the message would take its first lines as header";

/**
 * Why haraka-plugin-clamd would scan other bytes than the relay reads (and the
 * mail server gets): it reads Haraka's copy of the message, whose header section
 * is rebuilt from Haraka's parse (at most connection.ini [headers] max_lines
 * lines) and whose lines keep a single leading dot the relay removes.
 */
export function pluginCopyDiffers(
  message: { leadingDotLine?: number; headerLineCount: number; headerless?: boolean }, maxHeaderLines: number,
): string | undefined {
  if (message.headerless) return HEADERLESS_IN_HARAKAS_COPY;
  if (message.leadingDotLine) {
    return `line ${message.leadingDotLine} starts with a single dot (not doubled as RFC 5321 4.5.2 asks): `
      + 'haraka-plugin-clamd would scan it otherwise than the mail server reads it';
  }
  if (message.headerLineCount > maxHeaderLines) {
    return `a header of ${message.headerLineCount} lines, over Haraka's ${maxHeaderLines} (connection.ini [headers] max_lines): `
      + 'haraka-plugin-clamd would not scan all of it';
  }
  return undefined;
}

const texts = (list: unknown[] | undefined): string[] => (list ?? []).map(String).filter(Boolean);

/**
 * fail = infected (its names), unless every name is a limits/encryption
 * alert = not scanned; err = not scanned; pass = clean; skip (the operator's own
 * exclusions: only_with_attachments, max_size, [check]) = the AV stage not applied.
 */
export function verdictFromClamdPlugin(results: ClamdPluginResults | undefined): AvOutcome {
  const fail = texts(results?.fail);
  if (fail.length) {
    const names = fail.filter((n) => !NOT_SCANNED_ALERT.test(n));
    if (names.length) return { kind: 'infected', names };
    return { kind: 'not_scanned', reason: `clamd could not scan all of it (${fail.join(', ')})` };
  }
  const err = texts(results?.err);
  if (err.length) return { kind: 'not_scanned', reason: `haraka-plugin-clamd: ${err.join('; ')}` };
  if (texts(results?.pass).length) return { kind: 'clean' };
  const skip = texts(results?.skip);
  // too large for it is a limit, not the operator's exclusion: the policy's "not scanned"
  const limit = skip.filter((s) => SIZE_SKIP.test(s));
  if (limit.length) return { kind: 'not_scanned', reason: `haraka-plugin-clamd: ${limit.join(', ')}` };
  if (skip.length) return { kind: 'skipped', reason: `haraka-plugin-clamd skipped it (${skip.join(', ')})` };
  return { kind: 'not_scanned', reason: 'haraka-plugin-clamd gave no result' };
}

export interface ClamdPluginSettings {
  /** clamd.ini [reject] virus, error (the plugin's defaults: true) */
  rejectVirus: boolean;
  rejectError: boolean;
  /** clamd.ini [main] timeout: its scan bound, seconds */
  timeoutS: number;
  /** Haraka's hook timeout for the plugin (config/clamd.timeout, else plugin_timeout, else 30), seconds */
  hookTimeoutS: number;
}

/** What keeps the policy from deciding, said at start (the plugin would answer the client itself). */
export function clamdPluginWarnings(s: ClamdPluginSettings, scanningS: number): string[] {
  const out: string[] = [];
  if (s.rejectVirus) {
    out.push('haraka-plugin-clamd rejects infected messages itself (config/clamd.ini [reject] virus = true): '
      + 'set virus = false so that action_av_infected decides');
  }
  if (s.rejectError) {
    out.push('haraka-plugin-clamd defers messages it could not scan itself (config/clamd.ini [reject] error = true): '
      + 'set error = false so that action_av_notscanned decides');
  }
  if (s.timeoutS >= s.hookTimeoutS) {
    out.push(`haraka-plugin-clamd's scan bound (config/clamd.ini [main] timeout = ${s.timeoutS} s) `
      + `is not below Haraka's hook timeout for it (${s.hookTimeoutS} s, config/clamd.timeout): `
      + 'a slow scan would be answered by Haraka, not by the policy');
  }
  if (s.timeoutS > scanningS) {
    out.push(`haraka-plugin-clamd's scan bound (config/clamd.ini [main] timeout = ${s.timeoutS} s) `
      + `is above what timeout_message leaves scanning (${scanningS} s)`);
  }
  return out;
}
