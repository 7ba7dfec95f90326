// Transaction notes between the plugins about one message's fate.

/** set by esets_policy when the policy discards the message: it is answered 250 and never forwarded */
export const DISCARDED = 'esets_policy.discard';

/**
 * set by esets_forward: what the mail server did with the message. 'unknown'
 * from the moment it is sent until the server answers (and for good when the
 * answer is lost); 'failed': the link failed before the final dot.
 */
export const SERVER_OUTCOME = 'esets_forward.server_outcome';
export type ServerOutcome = 'accepted' | 'refused' | 'failed' | 'unknown';

/** set by esets_forward while it sends the message: settles when the server's outcome is known (or lost) */
export const SERVER_SENDING = 'esets_forward.sending';
