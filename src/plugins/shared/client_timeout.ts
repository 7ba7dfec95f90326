// The client's inactivity timeout (timeout_client) on Haraka's connection: one
// ClientTimer (src/session/client_timer) per connection, under one note.

import { ClientTimer, TimedSocket } from '../../session/client_timer';
import type { Connection } from './haraka';

const NOTE = 'esets_relay.client_timer';

/** The connection's timer (fed from Haraka's internals by client_input); undefined where Haraka gives no socket (a test harness). */
export function clientTimerOf(connection: Connection): ClientTimer | undefined {
  const existing = connection.notes[NOTE];
  if (existing instanceof ClientTimer) return existing;
  const client = connection.client as unknown as (Partial<TimedSocket> & { targetsocket?: TimedSocket }) | undefined;
  const socket = client?.targetsocket ?? client;
  if (!socket?.setTimeout) return undefined;
  const timer = new ClientTimer(socket as TimedSocket, () => Boolean(connection.remote.closed));
  connection.notes[NOTE] = timer;
  return timer;
}

/** Runs `work` with the client's inactivity timeout off (the relay waits, not the client). */
export function relayWaits<T>(connection: Connection, work: () => Promise<T>): Promise<T> {
  const timer = clientTimerOf(connection);
  return timer ? timer.during(work) : work();
}

/** timeout_client for this connection (both deployments: under `haraka -c` smtp.ini inactivity_timeout would decide otherwise). */
export function setClientTimeout(connection: Connection, seconds: number): void {
  clientTimerOf(connection)?.set(seconds);
}

/** The final dot: the client waits for its answer, whoever does the work. */
export function holdClientTimeout(connection: Connection): void {
  clientTimerOf(connection)?.hold();
}

/** The client has its answer (reset_transaction). */
export function releaseClientTimeout(connection: Connection): void {
  clientTimerOf(connection)?.release();
}

/** The client is gone: its deadlines are checked no more. */
export function stopClientTimer(connection: Connection): void {
  const existing = connection.notes[NOTE];
  if (existing instanceof ClientTimer) existing.stop();
}
