// Which infected MIME parts av_clean_mode allows to remove, and the notice
// that takes each removed part's place. See docs/policy.md.

import type { CleanMode } from './esets_options';
import type { MimePart } from './mime_tree';

export interface InfectedPart {
  part: MimePart;
  names: string[];
}

export function isAttachment(part: MimePart): boolean {
  return part.disposition === 'attachment' || part.filename !== undefined;
}

/** Whether av_clean_mode lets this infected part be removed (never the whole message). */
export function isRemovable(part: MimePart, root: MimePart, mode: CleanMode): boolean {
  if (part === root) return false;
  switch (mode) {
    case 'none': return false;
    case 'standard': return isAttachment(part);
    case 'strict': return isAttachment(part) || !part.contentType.startsWith('text/');
    case 'rigorous':
    case 'delete': return true;
  }
}

/** A text/plain part saying what was removed; no trailing CRLF (the boundary keeps its own). */
export function removalNotice(infected: InfectedPart, product: string): Buffer {
  const what = infected.part.filename
    ? `The attachment "${infected.part.filename.replace(/[\r\n"]/g, '')}"`
    : `A part of this message (${infected.part.contentType})`;
  const names = infected.names.join(', ').replace(/[\r\n]/g, ' ');
  return Buffer.from([
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
    'Content-Disposition: inline',
    '',
    `${what} was infected with ${names} and has been removed by ${product}.`,
  ].join('\r\n').replace(/[^\x09\x0a\x0d\x20-\x7e]/g, '?'), 'latin1');
}
