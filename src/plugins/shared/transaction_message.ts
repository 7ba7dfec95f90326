// The seam between Haraka's transaction and the relay's per-message object
// (src/session/relay_message): one note holds it, created by the first plugin
// that asks in the transaction (at MAIL). Haraka has no hook per DATA line, so
// the transaction's add_data (where Haraka hands over each line, as the client
// sent it) is wrapped for that one transaction: the relay's own copy.

import { CapturedMessage, MEMORY_LIMIT_BYTES } from '../../io/captured_message';
import { spoolDir } from '../../io/process_dirs';
import { headerViewLine } from '../../lib/smtp_data';
import { RelayMessage } from '../../session/relay_message';
import type { Transaction } from './haraka';

/** The one transaction note of the relay's plugins. */
export const MESSAGE_NOTE = 'esets_relay.message';

/** The transaction's message state, created at the first call. */
export function messageOf(txn: Transaction): RelayMessage {
  const existing = txn.notes.get(MESSAGE_NOTE);
  if (existing instanceof RelayMessage) return existing;
  const message = new RelayMessage();
  txn.notes.set(MESSAGE_NOTE, message);
  return message;
}

/** The transaction's captured message; created (and the tap set) at the first call, at the data hook. */
export function captureMessage(txn: Transaction): CapturedMessage {
  const state = messageOf(txn);
  if (state.captured) return state.captured;
  const message = new CapturedMessage(spoolDir(), MEMORY_LIMIT_BYTES, state.sizeLimit ?? 0);
  // Haraka's own Received: line (add_header_received) was added before the data hook
  for (const line of txn.header_lines ?? []) message.prepend(Buffer.from(line.replace(/\r?\n$/, '\r\n')));
  const addData = txn.add_data;
  txn.add_data = function tapped(this: Transaction, line: Buffer | string): void {
    // Haraka's body parser (parse_body, set by plugins such as haraka-plugin-clamd's
    // only_with_attachments) rewrites a line's CRLF in place: the relay keeps its own bytes
    message.addLine(typeof line === 'string' ? Buffer.from(line) : this.parse_body ? Buffer.from(line) : line);
    // a message the relay stopped keeping is refused at its end: Haraka's copy (for other plugins) stops growing too
    if (message.failure) this.discard_data = true;
    // Haraka keeps no copy (only our plugins run): its header view needs no line longer than RFC 5322's
    addData.call(this, this.discard_data && typeof line !== 'string' ? headerViewLine(line) : line);
  };
  state.captured = message;
  return message;
}

/** The captured message once the client sent the final dot. */
export function finishedMessage(txn: Transaction): CapturedMessage | undefined {
  const message = messageOf(txn).captured;
  message?.end();
  return message;
}

/** Frees the message (its spool file) when the transaction ends. */
export function dropMessage(txn: Transaction | null | undefined): void {
  if (txn) messageOf(txn).captured?.destroy();
}
