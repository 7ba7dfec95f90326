// The seam between Haraka and the relay's own copy of a message: Haraka has
// no hook per DATA line, so the transaction's add_data (where Haraka hands
// over each line, as the client sent it) is wrapped for that one transaction.
// esets_forward sends the captured bytes, esets_policy scans them.

import { CapturedMessage } from '../../io/captured_message';
import { spoolDir } from '../../io/process_dirs';
import type { Transaction } from './haraka';

const NOTE = 'esets_relay.message';

/** The transaction's captured message; created (and the tap set) at the first call, at the data hook. */
export function captureMessage(txn: Transaction): CapturedMessage {
  const existing = capturedMessage(txn);
  if (existing) return existing;
  const message = new CapturedMessage(spoolDir());
  // Haraka's own Received: line (add_header_received) was added before the data hook
  for (const line of txn.header_lines ?? []) message.prepend(Buffer.from(line.replace(/\r?\n$/, '\r\n')));
  const addData = txn.add_data;
  txn.add_data = function tapped(this: Transaction, line: Buffer | string): void {
    // Haraka's body parser (parse_body, set by plugins such as haraka-plugin-clamd's
    // only_with_attachments) rewrites a line's CRLF in place: the relay keeps its own bytes
    message.addLine(typeof line === 'string' ? Buffer.from(line) : this.parse_body ? Buffer.from(line) : line);
    addData.call(this, line);
  };
  txn.notes.set(NOTE, message);
  return message;
}

export function capturedMessage(txn: Transaction): CapturedMessage | undefined {
  return txn.notes.get(NOTE) as CapturedMessage | undefined;
}

/** The captured message once the client sent the final dot. */
export function finishedMessage(txn: Transaction): CapturedMessage | undefined {
  const message = capturedMessage(txn);
  message?.end();
  return message;
}

/** Frees the message (its spool file) when the transaction ends. */
export function dropMessage(txn: Transaction | null | undefined): void {
  if (txn) capturedMessage(txn)?.destroy();
}
