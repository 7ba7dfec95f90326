// spamd's answer to a SYMBOLS request (SPAMC/1.5 protocol), e.g.
//   SPAMD/1.1 0 EX_OK / Spam: True ; 1003.7 / 5.0 / <blank> / GTUBE,NO_RECEIVED

export type SpamdResult =
  | { ok: true; spam: boolean; score: number; threshold: number; tests: string[] }
  | { ok: false; reason: string };

export function parseSpamdReply(raw: string): SpamdResult {
  const [head, ...rest] = raw.split(/\r?\n\r?\n/);
  const lines = head.split(/\r?\n/);
  const status = /^SPAMD\/[\d.]+\s+(\d+)\s+(.*)$/.exec(lines[0] ?? '');
  if (!status) {
    const reason = raw ? `spamd: unexpected reply ${JSON.stringify(raw.slice(0, 80))}` : 'spamd closed the connection without a verdict';
    return { ok: false, reason };
  }
  if (status[1] !== '0') return { ok: false, reason: `spamd: ${status[2].trim()}` };
  const spam = lines.map((l) => /^Spam:\s*(True|False|Yes|No)\s*;\s*(-?[\d.]+)\s*\/\s*(-?[\d.]+)/i.exec(l)).find(Boolean);
  if (!spam) return { ok: false, reason: 'spamd: reply without a Spam: line' };
  const tests = rest.join('\n').split(/[,\s]+/).filter((t) => /^[A-Za-z0-9_]+$/.test(t));
  return { ok: true, spam: /^(true|yes)$/i.test(spam[1]), score: Number(spam[2]), threshold: Number(spam[3]), tests };
}

/** X-Spam-Status, in SpamAssassin's own format. */
export function xSpamStatus(result: { spam: boolean; score: number; threshold: number; tests: string[] }): string {
  return `${result.spam ? 'Yes' : 'No'}, score=${result.score.toFixed(1)} required=${result.threshold.toFixed(1)} `
    + `tests=${boundedTests(result.tests) || 'none'}`;
}

/** The most of X-Spam-Status the test names take: the relay's fields fit the room lib/message_size keeps. */
export const SPAM_TESTS_MAX_CHARS = 2000;

function boundedTests(tests: string[]): string {
  let out = '';
  for (const [i, test] of tests.entries()) {
    const next = out ? `${out},${test}` : test;
    if (next.length > SPAM_TESTS_MAX_CHARS) return `${out},+${tests.length - i} more`;
    out = next;
  }
  return out;
}
