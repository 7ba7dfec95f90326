// The quarantine's values: what an entry records about a message the policy
// stopped (or the original of a cleaned one), its id, the filters of
// `esets_quar list`, and which entries expiry removes. Pure: the store that
// keeps them is io/quarantine_store, the command bin/esets_quar.

import path from 'node:path';
import type { EsetsConfig } from './esets_options';
import type { AvOutcome, PolicyDecision } from './policy';

/** why the message was kept */
export type QuarantineVerdict = 'infected' | 'banned' | 'cleaned';

export interface QuarantineRelease {
  /** ISO time of the release */
  at: string;
  /** the recipients it went to */
  to: string[];
  /** the mail server's answer to the released message */
  reply: string;
}

export interface QuarantineEntry {
  id: string;
  /** ISO time the entry was stored */
  storedAt: string;
  /** Haraka's transaction uuid: the id in the relay's log lines and replies */
  traceId: string;
  client: { address: string; helo: string; name?: string };
  /** the envelope sender, `<>` for the null sender */
  sender: string;
  /** every accepted recipient, in order */
  recipients: string[];
  verdict: QuarantineVerdict;
  /** what the scanner named (virus names, Banned.<type>) */
  threats: string[];
  /** what the client was told: reject, discard, or accept (the cleaned copy went on) */
  action: 'reject' | 'discard' | 'accept';
  /** the option that decided, and the user section it came from ('' for the agent section) */
  decidedBy: { option: string; section: string };
  /** bytes of the stored message (as scanned: un-stuffed) */
  size: number;
  messageId: string;
  released: QuarantineRelease[];
}

/** `20261206T234900Z-` and 12 hex digits: sorts by time, unique by its random part (the store refuses a second) */
const ID_PATTERN = /^\d{8}T\d{6}Z-[0-9a-f]{12}$/;

export function quarantineId(now: Date, random: Uint8Array): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${Buffer.from(random.subarray(0, 6)).toString('hex')}`;
}

/** Whether `text` is an id (never a path: what a command line names is checked before it is joined to the folder). */
export function isQuarantineId(text: string): boolean {
  return ID_PATTERN.test(text);
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

/** An entry read back from its file; undefined when it is not one (a torn or foreign file is skipped, not trusted). */
export function parseEntry(text: string): QuarantineEntry | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  const e = v as Partial<QuarantineEntry> | null;
  if (!e || typeof e !== 'object') return undefined;
  const ok = isString(e.id) && isQuarantineId(e.id) && isString(e.storedAt) && !Number.isNaN(Date.parse(e.storedAt))
    && isString(e.traceId) && !!e.client && isString(e.client.address) && isString(e.client.helo)
    && isString(e.sender) && isStrings(e.recipients) && ['infected', 'banned', 'cleaned'].includes(e.verdict as string)
    && isStrings(e.threats) && ['reject', 'discard', 'accept'].includes(e.action as string)
    && !!e.decidedBy && isString(e.decidedBy.option) && isString(e.decidedBy.section)
    && Number.isSafeInteger(e.size) && isString(e.messageId) && Array.isArray(e.released)
    && e.released.every((r) => r && isString(r.at) && isStrings(r.to) && isString(r.reply));
  return ok ? e as QuarantineEntry : undefined;
}

export interface QuarantineFilter {
  /** stored at or after */
  since?: Date;
  /** stored before */
  until?: Date;
  /** the sender contains this (case-insensitive) */
  sender?: string;
  /** a recipient contains this (case-insensitive) */
  recipient?: string;
  verdict?: QuarantineVerdict;
}

export function matchesFilter(entry: QuarantineEntry, f: QuarantineFilter): boolean {
  const at = Date.parse(entry.storedAt);
  const has = (value: string, part: string): boolean => value.toLowerCase().includes(part.toLowerCase());
  return (!f.since || at >= f.since.getTime())
    && (!f.until || at < f.until.getTime())
    && (f.sender === undefined || has(entry.sender, f.sender))
    && (f.recipient === undefined || entry.recipients.some((r) => has(r, f.recipient!)))
    && (!f.verdict || entry.verdict === f.verdict);
}

export interface ExpiryLimits {
  /** seconds an entry is kept (0: no age limit) */
  maxAgeS: number;
  /** bytes all entries may take (0: no size limit) */
  maxBytes: number;
}

/**
 * What expiry removes, oldest first: every entry older than maxAgeS, then the
 * oldest of the rest until the total is within maxBytes.
 */
export function expiredEntries(
  entries: readonly Pick<QuarantineEntry, 'id' | 'storedAt' | 'size'>[], now: Date, limits: ExpiryLimits,
): { id: string; why: 'age' | 'size' }[] {
  const byAge = [...entries].sort((a, b) => Date.parse(a.storedAt) - Date.parse(b.storedAt) || a.id.localeCompare(b.id));
  const out: { id: string; why: 'age' | 'size' }[] = [];
  let total = byAge.reduce((sum, e) => sum + e.size, 0);
  for (const e of byAge) {
    const old = limits.maxAgeS > 0 && now.getTime() - Date.parse(e.storedAt) > limits.maxAgeS * 1000;
    const over = limits.maxBytes > 0 && total > limits.maxBytes;
    if (!old && !over) continue;
    out.push({ id: e.id, why: old ? 'age' : 'size' });
    total -= e.size;
  }
  return out;
}

/** The quarantine folder: daemon_quarantine, relative to esets.cfg's folder. */
export function quarantineDir(config: Pick<EsetsConfig, 'daemon_quarantine'>, esetsCfgFile: string): string {
  return path.resolve(path.dirname(esetsCfgFile), config.daemon_quarantine);
}

/**
 * Why a message is kept in the quarantine, or undefined: with
 * av_quarantine_enabled, a message the AV stage stopped as infected (banned:
 * every name is a Banned.<type>): rejected or discarded, not deferred (a
 * deferred message comes again) nor accepted (it was not stopped); and the
 * original of a cleaned one, whether the cleaned copy goes on or is refused.
 */
export function quarantineVerdict(
  config: Pick<EsetsConfig, 'av_quarantine_enabled'>, decision: Pick<PolicyDecision, 'action' | 'option'>, av: AvOutcome | undefined,
): { verdict: QuarantineVerdict; threats: string[] } | undefined {
  if (!config.av_quarantine_enabled || decision.action === 'defer' || !av) return undefined;
  if (av.kind === 'infected' && decision.option === 'action_av_infected' && decision.action !== 'accept') {
    const banned = av.names.length > 0 && av.names.every((n) => n.startsWith('Banned.'));
    return { verdict: banned ? 'banned' : 'infected', threats: av.names };
  }
  // (a cleaned copy action_av_deleted accepts goes on to the AS stage, which decides last)
  if (av.kind === 'cleaned' && (decision.option === 'action_av_deleted' || decision.option.startsWith('action_as'))) {
    return { verdict: 'cleaned', threats: av.names };
  }
  return undefined;
}
