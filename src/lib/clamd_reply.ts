// clamd's answer to one INSTREAM scan, e.g. "stream: OK",
// "stream: Eicar-Test-Signature FOUND", "INSTREAM size limit exceeded. ERROR".

export type ClamdVerdict =
  | { kind: 'clean' }
  | { kind: 'infected'; names: string[] }
  | { kind: 'not_scanned'; reason: string };

/**
 * Heuristic "detections" that mean clamd could not look inside (clamd.conf
 * AlertEncrypted*, AlertExceedsMax): the message was not scanned, not infected.
 */
const NOT_SCANNED_NAMES = /^Heuristics\.(Encrypted|Limits\.Exceeded)/;

export function parseClamdReply(raw: string): ClamdVerdict {
  const lines = raw.replace(/\0/g, '\n').split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length === 0) return { kind: 'not_scanned', reason: 'clamd closed the connection without a verdict' };
  const names: string[] = [];
  for (const line of lines) {
    const body = line.replace(/^stream:\s*/, '');
    if (body === 'OK') continue;
    const found = /^(.+) FOUND$/.exec(body);
    if (found) {
      const name = found[1].trim();
      if (NOT_SCANNED_NAMES.test(name)) return { kind: 'not_scanned', reason: `clamd: ${name}` };
      names.push(name);
      continue;
    }
    if (/size limit exceeded/i.test(body)) return { kind: 'not_scanned', reason: 'clamd: size limit exceeded (StreamMaxLength)' };
    return { kind: 'not_scanned', reason: `clamd: ${body.replace(/\s*ERROR$/, '')}` };
  }
  return names.length ? { kind: 'infected', names } : { kind: 'clean' };
}
