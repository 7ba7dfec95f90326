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
  let notScanned: string | undefined;
  // every line is read: a real signature beside a limit alert or an error is an infection (reject), not a
  // scan that failed (defer)
  for (const line of lines) {
    const body = line.replace(/^stream:\s*/, '');
    if (body === 'OK') continue;
    const found = /^(.+) FOUND$/.exec(body);
    const name = found?.[1].trim();
    if (name && !NOT_SCANNED_NAMES.test(name)) names.push(name);
    else if (name) notScanned ??= `clamd: ${name}`;
    else if (/size limit exceeded/i.test(body)) notScanned ??= 'clamd: size limit exceeded (StreamMaxLength)';
    else notScanned ??= `clamd: ${body.replace(/\s*ERROR$/, '')}`;
  }
  if (names.length) return { kind: 'infected', names };
  return notScanned ? { kind: 'not_scanned', reason: notScanned } : { kind: 'clean' };
}
