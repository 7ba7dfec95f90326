// HUP in every process of the relay: `systemctl reload` and logrotate send it
// to the manager. What it does is registered here by whoever owns it (the
// configuration is read again: plugins/shared/relay_config; log_file is
// reopened: bin/log_file), and a manager passes the signal on to its workers,
// so one HUP reaches every process once. One listener per process, installed
// at the first registration: a HUP never ends the process (Node's default).

import cluster from 'node:cluster';

const actions: (() => void)[] = [];
let listener: (() => void) | undefined;

/** Runs `action` at each HUP in this process (an action that throws does not stop the others). */
export function onHangup(action: () => void): void {
  actions.push(action);
  installHangup();
}

/** The listener alone (the launcher, before Haraka loads: a HUP then is passed on, never the end of the process). */
export function installHangup(): void {
  if (listener) return;
  listener = (): void => {
    for (const run of actions) {
      try {
        run();
      } catch {
        // each owner says its own failures; the next action and the workers still get the signal
      }
    }
    if (cluster.isPrimary) for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
  };
  process.on('SIGHUP', listener);
}

/** Whether a SIGHUP listener is this module's (the others are Haraka's: it flushes an outbound queue the relay does not use). */
export function isHangupListener(candidate: (...args: unknown[]) => void): boolean {
  return candidate === listener;
}
