// The relay's own replies as Haraka sends them: the one table
// (lib/relay_replies) with this session's trace id, as a reply object Haraka
// sends exactly (no text rebuilt from the code, as haraka-dsn would).

import { relayReply, ReplyRef } from '../../lib/relay_replies';
import { DSN, exactReply } from './exact_reply';
import type { Connection, Transaction } from './haraka';
import { traceId } from './trace_id';

/** The reply of that kind for this connection (its transaction's trace id when there is one). */
export function relayAnswer(connection: Connection, ref: ReplyRef, transaction?: Transaction | null): DSN {
  const reply = relayReply(ref, traceId(connection, transaction));
  return exactReply({ code: reply.code, lines: [reply.line] });
}
