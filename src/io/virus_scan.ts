// The AV stage of the policy: scan the captured message with clamd and, when
// av_clean_mode allows, remove infected MIME parts and scan the result again.

import type { CapturedMessage } from './captured_message';
import { bannedTypeOf } from '../lib/banned_types';
import { InfectedPart, isRemovable, removalNotice } from '../lib/cleaning';
import { HEAD_BYTES } from '../lib/content_formats';
import type { ClamdVerdict } from '../lib/clamd_reply';
import type { CleanMode } from '../lib/esets_options';
import { decodedBody, leafParts, parseMime } from '../lib/mime_tree';
import { replaceParts } from '../lib/mime_tree';
import type { AvOutcome } from '../lib/policy';
import { clamdScan, ClamdOptions, MAIL_MARKER } from './clamd_client';
import type { LiveScan } from './live_scan';
import type { ScanLimits } from './part_scans';
import { MimeScanResult, scanMimeLeaves } from './mime_scan';

export interface AvSettings {
  clamd: ClamdOptions;
  /** av_scan_obj_max_size: 0 for no limit of ours */
  maxSize: number;
  cleanMode: CleanMode;
  /** av_clean_max_parts: more leaf parts than this cannot be cleaned part by part */
  cleanMaxParts: number;
  product: string;
  /** the MIME walk's and unpacking's bounds (clamd's MaxRecursion, MaxFiles, MaxFileSize, MaxScanSize) */
  limits: ScanLimits;
  /** av_banned_types */
  banned: readonly string[];
  /** the transaction ended (the client left), or scanning's time is up: stop scanning */
  signal: AbortSignal;
}

export async function scanForViruses(message: CapturedMessage, settings: AvSettings, live?: LiveScan): Promise<AvOutcome> {
  if (settings.maxSize > 0 && message.size > settings.maxSize) {
    live?.abandon('too large');
    return { kind: 'not_scanned', reason: `message of ${message.size} bytes exceeds av_scan_obj_max_size ${settings.maxSize}` };
  }
  const verdict = await bothVerdicts(message, settings, live);
  if (verdict.kind !== 'infected' || settings.cleanMode === 'none') return verdict;
  return clean(message, settings, verdict.names);
}

/**
 * The relay's verdict on each part as readers decode it (archives opened), and
 * clamd's on the whole message, which starts once the parts are known to hold
 * nothing clamd must not see (XAR: then the whole message is not sent at all):
 * infected when either finds a virus (the other is then stopped), clean only
 * when both are clean.
 */
async function bothVerdicts(message: CapturedMessage, settings: AvSettings, live?: LiveScan): Promise<AvOutcome> {
  const stopParts = new AbortController();
  let whole: Promise<ClamdVerdict> | undefined;
  const startWhole = (): void => {
    whole ??= wholeMessageVerdict(message, settings, live).then((v) => {
      if (v.kind === 'infected') stopParts.abort('infected');
      return v;
    });
  };
  const parts = await scanMimeLeaves(() => message.readAsSent(), {
    clamd: settings.clamd, limits: settings.limits, banned: settings.banned,
    signal: AbortSignal.any([settings.signal, stopParts.signal]), onSafe: startWhole,
    // a failure of the walk itself: what it had not seen yet could be what clamd must not be given
  }).catch((err: Error): MimeScanResult => ({ kind: 'not_scanned', reason: `MIME parts: ${err.message}`, unsafe: true }));
  if (parts.kind === 'not_scanned' && parts.unsafe) {
    live?.cancel('not sent to clamd');
    return parts;
  }
  if (parts.kind === 'infected' && !whole) {
    live?.cancel('infected');
    return parts;
  }
  // a walk that stopped at a limit or judged the structure malformed: the whole message goes to clamd too (its
  // own limits are the same; its verdict, infected or its own reason, is the more telling one)
  startWhole();
  return withParts(await whole!, parts);
}

/** The whole message's verdict with the parts' (infected first, then unreadable, then not scanned). */
export function withParts(whole: AvOutcome, parts: MimeScanResult): AvOutcome {
  if (whole.kind === 'infected') return whole;
  if (parts.kind === 'infected') return parts;
  if (parts.kind === 'spool_error') return parts;
  if (parts.kind === 'malformed') return { kind: 'unreadable', reason: parts.reason };
  if (whole.kind === 'not_scanned') return whole;
  if (parts.kind === 'not_scanned') return parts;
  return whole;
}

/** The live scan's verdict when it has one, else an ordinary scan (without a daemon the live scan found down). */
async function wholeMessageVerdict(message: CapturedMessage, settings: AvSettings, live?: LiveScan): Promise<ClamdVerdict> {
  let { addresses } = settings.clamd;
  if (live) {
    // the live scan stops with the signal, its reason becoming the verdict's
    const stop = (): void => live.cancel(typeof settings.signal.reason === 'string' ? settings.signal.reason : undefined);
    if (settings.signal.aborted) stop();
    settings.signal.addEventListener('abort', stop, { once: true });
    const result = await live.end(message.size).finally(() => settings.signal.removeEventListener('abort', stop));
    if ('verdict' in result) return result.verdict;
    if (result.cancelled) return { kind: 'not_scanned', reason: result.reason };
    if (result.failed) {
      addresses = addresses.filter((a) => a !== result.failed);
      if (addresses.length === 0) return { kind: 'not_scanned', reason: `clamd unavailable (${result.reason})` };
    }
  }
  if (settings.signal.aborted) return { kind: 'not_scanned', reason: String(settings.signal.reason ?? 'transaction ended') };
  return clamdScan({ ...settings.clamd, addresses }, (sink) => {
    sink.write(MAIL_MARKER);
    message.readAsSent().pipe(sink);
  }, settings.signal);
}

/** The largest message cleaning rebuilds (in memory, with its parts decoded). */
export const CLEAN_MAX_BYTES = 16 * 1024 * 1024;

/**
 * Scans each part alone; removes the infected ones if all of them may be
 * removed. Bounded: at most cleanMaxParts parts, within one scan timeout for
 * all of them, and stopped when the client leaves; past a bound the message
 * stays infected (it was found infected as a whole).
 */
async function clean(message: CapturedMessage, settings: AvSettings, names: string[]): Promise<AvOutcome> {
  const infected: AvOutcome = { kind: 'infected', names };
  // cleaning rebuilds the message in memory: a larger one stays infected, so memory per message stays bounded
  if (message.size > CLEAN_MAX_BYTES) return infected;
  const deadline = Date.now() + settings.clamd.scanTimeoutMs;
  const bytes = await message.readAllAsSent();
  const root = parseMime(bytes);
  const leaves = leafParts(root);
  if (leaves.length > settings.cleanMaxParts) return infected;
  const found: InfectedPart[] = [];
  for (const part of leaves) {
    const left = deadline - Date.now();
    if (settings.signal.aborted || left <= 0) return infected;
    const body = decodedBody(bytes, part);
    // a banned attachment (by its own name or content) is removed like an infected one
    const attachment = part.disposition === 'attachment' || part.filename !== undefined;
    const names = part.filename ? [part.filename] : [];
    const banned = attachment ? bannedTypeOf(settings.banned, body.subarray(0, HEAD_BYTES), names) : undefined;
    if (banned) {
      found.push({ part, names: [`Banned.${banned}`] });
      continue;
    }
    const verdict: ClamdVerdict = await clamdScan({ ...settings.clamd, scanTimeoutMs: left }, (sink) => sink.end(body), settings.signal);
    if (verdict.kind === 'not_scanned') return infected;
    if (verdict.kind === 'infected') found.push({ part, names: verdict.names });
  }
  // the infection is in no single part (or in the message body itself): it cannot be removed
  if (found.length === 0 || found.some((f) => !isRemovable(f.part, root, settings.cleanMode))) return infected;

  const cleaned = replaceParts(bytes, new Map(found.map((f) => [f.part, removalNotice(f, settings.product)])));
  const left = deadline - Date.now();
  if (settings.signal.aborted || left <= 0) return infected;
  // the rebuilt message, as a whole and part by part, must be clean (else the message read above comes back)
  message.replace(cleaned, bytes);
  const rescan = await bothVerdicts(message, { ...settings, clamd: { ...settings.clamd, scanTimeoutMs: left } });
  if (rescan.kind !== 'clean') {
    message.replace(bytes);
    return infected;
  }
  return { kind: 'cleaned', removed: found.length, names: found.flatMap((f) => f.names) };
}
