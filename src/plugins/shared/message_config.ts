// The configuration one message runs under, chosen by esets_user_config at the
// first recipient and read by esets_policy (transaction.notes).

import type { EsetsConfig } from '../../lib/esets_options';

export const MESSAGE_CONFIG = 'esets_user_config';

/** A user section as the logs name it: its header and line in user_config. */
export interface SectionRef {
  name: string;
  line: number;
}

export interface MessageConfig {
  config: EsetsConfig;
  /** the matched section; undefined: the agent section [smtp] */
  section?: SectionRef;
}

/** `[name]`, or `[smtp]` for the agent section. */
export function sectionName(section: SectionRef | undefined): string {
  return section ? `[${section.name}]` : '[smtp]';
}
