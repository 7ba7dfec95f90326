// This process is stopping (TERM): the sessions in progress finish their
// transaction, and no new one starts (a client that keeps its connection and
// sends message after message would otherwise be cut at the drain bound,
// mid-message, and send again: a duplicate). Set by the signal handling,
// read by esets_forward at MAIL.

let draining = false;

export function startDraining(): void {
  draining = true;
}

export function isDraining(): boolean {
  return draining;
}
