// The mail server's SIZE limit as its EHLO reply to the relay said, noted by
// esets_forward when it opens the server session: the limit for a client that
// says HELO (Haraka runs no capabilities hook for it, so its EHLO lines are never seen).

import type { Connection } from './haraka';

const NOTE = 'esets_relay.next_hop_size';

export function noteNextHopSize(connection: Connection, size: number | undefined): void {
  if (size !== undefined) connection.notes[NOTE] = size;
}

/** undefined: unknown, or the server has no SIZE extension; 0: no fixed limit. */
export function nextHopSize(connection: Connection): number | undefined {
  const size = connection.notes[NOTE];
  return typeof size === 'number' ? size : undefined;
}
