// The AS stage of the policy: ask spamd, within spamd_max_size.

import type { AsOutcome } from '../lib/policy';
import type { CapturedMessage } from './captured_message';
import { spamdCheck, SpamdOptions } from './spamd_client';

export interface AsSettings {
  spamd: SpamdOptions;
  maxSize: number;
}

export interface AsResult {
  outcome: AsOutcome;
  tests: string[];
}

export async function scanForSpam(message: CapturedMessage, settings: AsSettings): Promise<AsResult> {
  if (settings.maxSize > 0 && message.size > settings.maxSize) {
    return {
      outcome: { kind: 'not_scanned', reason: `message of ${message.size} bytes exceeds spamd_max_size ${settings.maxSize}` },
      tests: [],
    };
  }
  const result = await spamdCheck(settings.spamd, (sink) => message.readAsSent().pipe(sink));
  if (!result.ok) return { outcome: { kind: 'not_scanned', reason: result.reason }, tests: [] };
  const { score, threshold } = result;
  return { outcome: { kind: result.spam ? 'spam' : 'ham', score, threshold }, tests: result.tests };
}
