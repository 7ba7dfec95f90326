// Under `haraka -c`: the manual's signals (io/stop_signals), installed by the
// first of our plugins to register (the launcher has installed them before
// Haraka loaded), and told which Haraka server's listeners TERM closes.

import { handleStopSignals, HarakaServer, isOurListener, setHarakaServer, stopSignalsInstalled } from '../../io/stop_signals';
import { underHarakaC } from '../../io/config_files';
import type { StopTiming } from '../../lib/timeout_budget';
import type { Next, Plugin } from './haraka';

const SERVER_HOOK_METHOD = 'esets_stop_signals_server';

/** Haraka takes TERM itself only as PID 1 (an immediate exit): that is undone. */
export function useStopSignals(plugin: Plugin, timing: StopTiming): void {
  // (in a test harness loading a plugin the signals stay the harness's)
  if (!stopSignalsInstalled() && underHarakaC()) {
    handleStopSignals(timing);
    for (const listener of process.listeners('SIGTERM') as ((...args: unknown[]) => void)[]) {
      if (!isOurListener(listener)) process.off('SIGTERM', listener);
    }
  }
  // the listeners to close are Haraka's server's (the one running this plugin, whichever install it is)
  Object.assign(plugin, {
    [SERVER_HOOK_METHOD]: (next: Next, server: HarakaServer): void => {
      setHarakaServer(server);
      next();
    },
  });
  plugin.register_hook('init_master', SERVER_HOOK_METHOD);
  plugin.register_hook('init_child', SERVER_HOOK_METHOD);
}
