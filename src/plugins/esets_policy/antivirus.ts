// The AV stage of the policy: scan the message with clamd and, when
// av_clean_mode allows, remove infected MIME parts and scan the result again.

import { InfectedPart, isRemovable, removalNotice } from '../../lib/cleaning';
import type { ClamdVerdict } from '../../lib/clamd_reply';
import type { CleanMode } from '../../lib/esets_options';
import { decodedBody, leafParts, parseMime, replaceParts } from '../../lib/mime_tree';
import type { AvOutcome } from '../../lib/policy';
import type { Transaction } from '../shared/haraka';
import { clamdScan, ClamdOptions } from './clamd_client';
import type { LiveScan } from './live_scan';
import { readMessage, replaceMessage } from './message_store';

export interface AvSettings {
  clamd: ClamdOptions;
  /** av_scan_obj_max_size: 0 for no limit of ours */
  maxSize: number;
  cleanMode: CleanMode;
  product: string;
}

/** `streamFree`: the message stream is being read by esets_forward's early send until this resolves. */
export async function scanForViruses(txn: Transaction, settings: AvSettings, live?: LiveScan, streamFree?: Promise<void>): Promise<AvOutcome> {
  if (settings.maxSize > 0 && txn.data_bytes > settings.maxSize) {
    live?.abandon('too large');
    return { kind: 'not_scanned', reason: `message of ${txn.data_bytes} bytes exceeds av_scan_obj_max_size ${settings.maxSize}` };
  }
  const verdict = await wholeMessageVerdict(txn, settings, live, streamFree);
  if (verdict.kind !== 'infected' || settings.cleanMode === 'none') return verdict;
  return clean(txn, settings, verdict.names);
}

/** The live scan's verdict when it has one, else an ordinary scan (without a daemon the live scan found down). */
async function wholeMessageVerdict(txn: Transaction, settings: AvSettings, live?: LiveScan, streamFree?: Promise<void>): Promise<ClamdVerdict> {
  let { addresses } = settings.clamd;
  if (live) {
    const result = await live.end(txn.data_bytes);
    if ('verdict' in result) return result.verdict;
    if (result.failed) {
      addresses = addresses.filter((a) => a !== result.failed);
      if (addresses.length === 0) return { kind: 'not_scanned', reason: `clamd unavailable (${result.reason})` };
    }
  }
  await streamFree;
  return clamdScan({ ...settings.clamd, addresses }, (sink) => txn.message_stream.pipe(sink));
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
