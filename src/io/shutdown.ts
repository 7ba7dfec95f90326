// This process is stopping (TERM). First `stopping`: /health fails at once so
// a balancer sends new clients elsewhere, while the listener still takes them
// for the drain grace. Then `draining`: the sessions in progress finish their
// transaction, and no new one starts (a client that keeps its connection and
// sends message after message would otherwise be cut at the drain bound,
// mid-message, and send again: a duplicate). Set by the signal handling,
// read by /health and by esets_forward at MAIL.

let stopping = false;
let draining = false;

export function startStopping(): void {
  stopping = true;
}

export function isStopping(): boolean {
  return stopping;
}

/** the mail server's answers to messages already sent, not yet in */
const answers = new Set<Promise<unknown>>();

export function startDraining(): void {
  stopping = true;
  draining = true;
}

export function isDraining(): boolean {
  return draining;
}

/**
 * A message's final dot went to the server: its answer is awaited (bounded by
 * the message's own deadline). At the drain bound the process waits for these,
 * since cutting one would leave the server with a message the client retries.
 */
export function trackAnswer(answer: Promise<unknown>): void {
  const settled = answer.then(() => undefined, () => undefined);
  answers.add(settled);
  void settled.then(() => answers.delete(settled));
}

/** Resolves once every answer awaited now is in (or lost); how many there were. */
export async function answersInFlight(): Promise<number> {
  const pending = [...answers];
  await Promise.all(pending);
  return pending.length;
}
