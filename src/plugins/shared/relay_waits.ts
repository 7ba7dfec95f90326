// timeout_client is the client's silence (Haraka: the socket's inactivity
// timeout). While the relay itself waits, on the mail server or a scanner, the
// client is silent because it waits for the relay: that time is not counted,
// or a client could be told "421 timeout" about a message the server then
// takes (a duplicate when it sends it again).

import type { Connection } from './haraka';

const WAITS = 'esets_relay.waits';

interface TimedSocket {
  timeout?: number;
  setTimeout(ms: number): unknown;
}

interface Waits {
  count: number;
  timeoutMs: number;
}

function clientSocket(connection: Connection): TimedSocket | undefined {
  const client = connection.client as unknown as (TimedSocket & { targetsocket?: TimedSocket }) | undefined;
  return client?.targetsocket ?? client;
}

/** Runs `work` with the client's inactivity timeout off; it is set again (from zero) when the last wait ends. */
export async function relayWaits<T>(connection: Connection, work: () => Promise<T>): Promise<T> {
  const socket = clientSocket(connection);
  if (!socket?.setTimeout) return work();
  const waits = (connection.notes[WAITS] ??= { count: 0, timeoutMs: 0 }) as Waits;
  if (waits.count++ === 0) {
    waits.timeoutMs = socket.timeout ?? 0;
    socket.setTimeout(0);
  }
  try {
    return await work();
  } finally {
    if (--waits.count === 0 && !connection.remote.closed) socket.setTimeout(waits.timeoutMs);
  }
}

/**
 * timeout_client for this connection (both deployments: under `haraka -c`
 * Haraka's smtp.ini inactivity_timeout would decide otherwise). Inside a wait
 * of the relay's it applies when the wait ends.
 */
export function setClientTimeout(connection: Connection, seconds: number): void {
  const socket = clientSocket(connection);
  if (!socket?.setTimeout) return;
  const waits = connection.notes[WAITS] as Waits | undefined;
  if (waits && waits.count > 0) waits.timeoutMs = seconds * 1000;
  else socket.setTimeout(seconds * 1000);
}

const HELD = 'esets_relay.client_timeout_held';

/**
 * From the final dot until the client has its answer the client waits for the
 * relay, whoever does the work (our plugins, haraka-plugin-clamd, a queue plugin
 * such as queue/smtp_forward waiting on the server): its timeout is off. A
 * 421 timeout then would come after a message the server may take (a duplicate).
 */
export function holdClientTimeout(connection: Connection): void {
  const socket = clientSocket(connection);
  if (!socket?.setTimeout || connection.notes[HELD]) return;
  connection.notes[HELD] = true;
  const waits = (connection.notes[WAITS] ??= { count: 0, timeoutMs: 0 }) as Waits;
  if (waits.count++ === 0) {
    waits.timeoutMs = socket.timeout ?? 0;
    socket.setTimeout(0);
  }
}

/** The client has its answer (reset_transaction): its silence counts again. */
export function releaseClientTimeout(connection: Connection): void {
  if (!connection.notes[HELD]) return;
  connection.notes[HELD] = false;
  const socket = clientSocket(connection);
  const waits = connection.notes[WAITS] as Waits | undefined;
  if (!socket?.setTimeout || !waits) return;
  if (--waits.count === 0 && !connection.remote.closed) socket.setTimeout(waits.timeoutMs);
}
