// How esets_policy and esets_forward overlap the scan with the forwarding: when
// the policy delivers only clean messages (policy.ts deliversOnlyClean) and
// clamd's verdict is not in yet at data_post, the policy asks esets_forward to
// send DATA and the message now, holding back the final dot. Accepted: the
// queue hook sends the dot and passes on the server's reply. Anything else:
// the send is dropped (the server discards a message without its dot).

import type { Transaction } from './haraka';

/** transaction note (set by esets_forward at MAIL): starts the early send, if the session allows */
export const START_EARLY_FORWARD = 'esets_forward.start_early';

export interface EarlyForward {
  /** resolves when esets_forward no longer reads the message stream (it can be piped again) */
  streamFree: Promise<void>;
  /** drops the send; the session with the server is closed */
  abort(): void;
}

export type StartEarlyForward = () => EarlyForward | undefined;

export function earlyForwardStarter(txn: Transaction): StartEarlyForward | undefined {
  return txn.notes.get(START_EARLY_FORWARD) as StartEarlyForward | undefined;
}
