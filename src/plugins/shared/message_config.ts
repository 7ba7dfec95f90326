// The configuration one message runs under, chosen by esets_user_config at the
// first recipient and read by esets_policy (transaction.notes).

import type { EsetsConfig } from '../../lib/esets_options';

export const MESSAGE_CONFIG = 'esets_user_config';

export interface MessageConfig {
  config: EsetsConfig;
  /** the matched section's header and line; undefined: the agent section [smtp] */
  section?: string;
}
