// The AV stage of the policy: scan the message with clamd and, when
// av_clean_mode allows, remove infected MIME parts and scan the result again.

import { InfectedPart, isRemovable, removalNotice } from '../../lib/cleaning';
import type { ClamdVerdict } from '../../lib/clamd_reply';
import type { CleanMode } from '../../lib/esets_options';
import { decodedBody, leafParts, parseMime, replaceParts } from '../../lib/mime_tree';
import type { AvOutcome } from '../../lib/policy';
import type { EarlyForward } from '../shared/early_forward';
import type { Transaction } from '../shared/haraka';
import { clamdScan, ClamdOptions } from './clamd_client';
import type { LiveScan } from './live_scan';
import { readMessage, replaceMessage } from './message_store';

/** how long a fallback scan waits for the early send to finish reading the message */
const EARLY_SEND_WAIT_MS = 30_000;

export interface AvSettings {
  clamd: ClamdOptions;
  /** av_scan_obj_max_size: 0 for no limit of ours */
  maxSize: number;
  cleanMode: CleanMode;
  product: string;
}

/** `early`: esets_forward's early send, which reads the message stream while it runs. */
export async function scanForViruses(txn: Transaction, settings: AvSettings, live?: LiveScan, early?: EarlyForward): Promise<AvOutcome> {
  if (settings.maxSize > 0 && txn.data_bytes > settings.maxSize) {
    live?.abandon('too large');
    return { kind: 'not_scanned', reason: `message of ${txn.data_bytes} bytes exceeds av_scan_obj_max_size ${settings.maxSize}` };
  }
  const verdict = await wholeMessageVerdict(txn, settings, live, early);
  if (verdict.kind !== 'infected' || settings.cleanMode === 'none') return verdict;
  return clean(txn, settings, verdict.names);
}

/** The live scan's verdict when it has one, else an ordinary scan (without a daemon the live scan found down). */
async function wholeMessageVerdict(txn: Transaction, settings: AvSettings, live?: LiveScan, early?: EarlyForward): Promise<ClamdVerdict> {
  let { addresses } = settings.clamd;
  if (live) {
    const result = await live.end(txn.data_bytes);
    if ('verdict' in result) return result.verdict;
    if (result.cancelled) return { kind: 'not_scanned', reason: result.reason };
    if (result.failed) {
      addresses = addresses.filter((a) => a !== result.failed);
      if (addresses.length === 0) return { kind: 'not_scanned', reason: `clamd unavailable (${result.reason})` };
    }
  }
  if (early) await messageStreamFrom(early);
  return clamdScan({ ...settings.clamd, addresses }, (sink) => txn.message_stream.pipe(sink));
}

/** Waits for the early send to finish reading the message; a server that stops reading loses it. */
async function messageStreamFrom(early: EarlyForward): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const free = await Promise.race([
    early.streamFree.then(() => true),
    new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), EARLY_SEND_WAIT_MS); }),
  ]);
  clearTimeout(timer);
  if (free) return;
  early.abort();
  await early.streamFree;
}

/** Scans each part alone; removes the infected ones if all of them may be removed. */
async function clean(txn: Transaction, settings: AvSettings, names: string[]): Promise<AvOutcome> {
  const infected: AvOutcome = { kind: 'infected', names };
  const message = await readMessage(txn);
  const root = parseMime(message);
  const found: InfectedPart[] = [];
  for (const part of leafParts(root)) {
    const verdict: ClamdVerdict = await clamdScan(settings.clamd, (sink) => sink.end(decodedBody(message, part)));
    if (verdict.kind === 'not_scanned') return infected;
    if (verdict.kind === 'infected') found.push({ part, names: verdict.names });
  }
  // the infection is in no single part (or in the message body itself): it cannot be removed
  if (found.length === 0 || found.some((f) => !isRemovable(f.part, root, settings.cleanMode))) return infected;

  const cleaned = replaceParts(message, new Map(found.map((f) => [f.part, removalNotice(f, settings.product)])));
  const rescan = await clamdScan(settings.clamd, (sink) => sink.end(cleaned));
  if (rescan.kind !== 'clean') return infected;
  await replaceMessage(txn, cleaned);
  return { kind: 'cleaned', removed: found.length, names: found.flatMap((f) => f.names) };
}
