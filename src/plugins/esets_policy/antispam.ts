// The AS stage of the policy: ask spamd, within spamd_max_size.

import type { AsOutcome } from '../../lib/policy';
import type { Transaction } from '../shared/haraka';
import { spamdCheck, SpamdOptions } from './spamd_client';

export interface AsSettings {
  spamd: SpamdOptions;
  maxSize: number;
}

export interface AsResult {
  outcome: AsOutcome;
  tests: string[];
}

export async function scanForSpam(txn: Transaction, settings: AsSettings): Promise<AsResult> {
  if (settings.maxSize > 0 && txn.data_bytes > settings.maxSize) {
    return { outcome: { kind: 'not_scanned', reason: `message of ${txn.data_bytes} bytes exceeds spamd_max_size ${settings.maxSize}` }, tests: [] };
  }
  const result = await spamdCheck(settings.spamd, (sink) => txn.message_stream.pipe(sink));
  if (!result.ok) return { outcome: { kind: 'not_scanned', reason: result.reason }, tests: [] };
  const { score, threshold } = result;
  return { outcome: { kind: result.spam ? 'spam' : 'ham', score, threshold }, tests: result.tests };
}
