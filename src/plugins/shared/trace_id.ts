// The trace id: what a sender quotes and an operator greps for. It is
// Haraka's own id, the one in the brackets of every Haraka log line of that
// session: the transaction's uuid (`CONNECTION-UUID.N`) for a message, the
// connection's uuid before any transaction (a 421 at connect). Replies the
// relay composes carry it (lib/relay_replies), and so does the summary line.

import type { Connection, Transaction } from './haraka';

export function traceId(connection: Connection, transaction?: Transaction | null): string {
  return (transaction ?? connection.transaction)?.uuid ?? connection.uuid;
}
