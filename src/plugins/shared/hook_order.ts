// Where our hooks run among all of Haraka's (priority -100 first .. 100 last;
// equal priorities in config/plugins order): the order of config/plugins, and
// the operator's own plugins listed in it, cannot change what the relay does.

/** rcpt: choose the user section and decide split_recipients, then forward the RCPT, before any other plugin can accept */
export const RCPT_PRIORITY = { selectSection: -100, forward: -99 } as const;

/**
 * data_post: the policy after every verdict source at Haraka's default priority
 * (haraka-plugin-clamd), then the message to the server once accepted.
 */
export const DATA_POST_PRIORITY = { beforeScanners: -100, policy: 50, forward: 100 } as const;
