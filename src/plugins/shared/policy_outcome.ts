// transaction note set by esets_policy when the policy discards the message:
// it is answered 250 and never forwarded.
export const DISCARDED = 'esets_policy.discard';
