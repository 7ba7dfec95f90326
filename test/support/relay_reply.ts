// What every reply the relay composes must be (lib/relay_replies): its text,
// then the trace id in one form; nothing of the relay's own internals.

import assert from 'node:assert/strict';

/** Haraka's uuid: the connection's, or a transaction's (`.N`) */
const TRACE = /^(.*) \(trace ([0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}(?:\.\d+)?)\)$/;
/** what a reply must never hold: an IPv4 address, a port, a path, an errno, a scanner's name, a config file */
const LEAK = /\d+\.\d+\.\d+\.\d+|:\d+|\/|\bE[A-Z]{3,}\b|clamd|spamd|\.cfg|\.conf\b|\.ini\b/;

/**
 * Checks one reply line of the relay's own (`text`: without the code, e.g. `4.4.1 Mail server ...`):
 * the enhanced code and words expected, the trace id at the end, no internals. Returns the trace id.
 */
export function relayReplyTrace(text: string, expected: RegExp): string {
  const m = TRACE.exec(text);
  assert.ok(m, `no trace id at the end of the reply: ${text}`);
  assert.match(m[1], expected);
  assert.doesNotMatch(m[1], LEAK, `the reply shows internals: ${text}`);
  return m[2];
}

/** The log lines (Haraka's `[ID]` or a summary's field) of one trace id. */
export function linesOf(output: string, trace: string): string[] {
  return output.split('\n').filter((l) => l.includes(trace));
}

/**
 * The summary line (`action=...`) of the message a reply of the relay's answered, found by the reply's trace id:
 * where the verdict's whole reason is (a scanner's words, a limit), which the reply leaves out.
 */
export async function summaryOf(output: () => string, replyText: string, ms = 15_000): Promise<string> {
  const trace = TRACE.exec(replyText)?.[2];
  assert.ok(trace, `no trace id at the end of the reply: ${replyText}`);
  const find = (): string | undefined => linesOf(output(), trace).find((l) => / action=/.test(l));
  const deadline = Date.now() + ms;
  while (find() === undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  const line = find();
  assert.ok(line, `no summary line of ${trace} in the log`);
  return line;
}

/**
 * A reply as a test of verdicts reads it: a refusal of the relay's own (it ends with a trace id) checked for
 * internals, followed by ` || log: ` and the summary line of its trace id, where the scanner's reason is. Any
 * other reply (a 250, the server's own) as it is.
 */
export async function withSummary(output: () => string, replyText: string): Promise<string> {
  if (!TRACE.test(replyText) || /^2/.test(replyText)) return replyText;
  relayReplyTrace(replyText, /./);
  return `${replyText} || log: ${await summaryOf(output, replyText)}`;
}
