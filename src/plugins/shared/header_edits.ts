// What the policy changes in an accepted message's header, as a value
// (transaction note) that esets_forward applies to the captured bytes: the
// fields to drop (the client's X-Virus-Scanner:/X-Spam-* forgeries) and the
// relay's own fields, which go on top.

import type { HeaderField } from '../../lib/smtp_data';

export const HEADER_EDITS = 'esets_policy.header_edits';

export interface HeaderEdits {
  /** is this field (name in lower case) removed? */
  remove(name: string): boolean;
  add: HeaderField[];
}

/** The fields only the relay may write: any the client sent are removed. */
export function isScannerField(name: string): boolean {
  return name === 'x-virus-scanner' || name.startsWith('x-spam-');
}
