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

/** capabilities: the SIZE line is set after esets_forward put the server's EHLO reply in place */
export const CAPABILITIES_PRIORITY = { size: 50 } as const;

/** mail: the size and spool checks before the MAIL goes to the server */
export const MAIL_PRIORITY = { limits: -100 } as const;

/**
 * queue: the answer to a message already delivered (esets_forward) or discarded (esets_policy) comes first,
 * so that no other queue plugin (queue/smtp_forward left in config/plugins) delivers it a second time
 */
export const QUEUE_PRIORITY = { answered: -100 } as const;
