// Reading the message Haraka holds, and putting a rebuilt one in its place.

import { Writable } from 'node:stream';
import type { Transaction } from '../shared/haraka';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const MessageStream = require('haraka-message-stream') as new (
  cfg: Record<string, unknown>, id: string, headers: string[],
) => Transaction['message_stream'] & { add_line(line: Buffer): void; add_line_end(cb?: () => void): void };

/** The whole message as it would be delivered (headers as Haraka holds them), without dot-stuffing. */
export function readMessage(txn: Transaction): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk);
        done();
      },
      final(done) {
        done();
        resolve(Buffer.concat(chunks));
      },
    });
    sink.on('error', reject);
    txn.message_stream.pipe(sink);
  });
}

/**
 * Replaces the message body with `message` (whose header section must be the
 * transaction's current one: Haraka emits its own header list in its place).
 */
export function replaceMessage(txn: Transaction, message: Buffer): Promise<void> {
  const header = txn.header as unknown as { header_list: string[] };
  const stream = new MessageStream({}, `${txn.uuid}.cleaned`, header.header_list);
  let pos = 0;
  while (pos < message.length) {
    let nl = message.indexOf(0x0a, pos);
    nl = nl < 0 ? message.length : nl + 1;
    let line = message.subarray(pos, nl);
    // stored lines are dot-stuffed, as they arrive over SMTP
    if (line[0] === 0x2e) line = Buffer.concat([Buffer.from('.'), line]);
    stream.add_line(line);
    pos = nl;
  }
  return new Promise((resolve) => {
    stream.add_line_end(() => {
      const old = txn.message_stream as unknown as { destroy?: () => void };
      txn.message_stream = stream;
      old.destroy?.();
      resolve();
    });
  });
}
