// The size a client is told (RFC 1870 SIZE) and held to. The relay adds its own
// header fields (X-Virus-Scanner:, X-Spam-*, Received: when asked) to what the
// client sends, so it advertises less than the next hop takes: a message the
// relay accepts is never refused by the server for the relay's own bytes.

/** Room kept for the fields the relay adds (each of them is bounded well below it). */
export const SIZE_ROOM_BYTES = 8 * 1024;

/**
 * The size the relay takes: the next hop's advertised limit less the room,
 * or the relay's own (`own`, 0: none) when that is lower. `nextHop`: the
 * number after SIZE (0 or undefined: no fixed limit). 0 means no limit.
 */
export function sizeLimit(nextHop: number | undefined, own: number): number {
  // a next hop with a tiny limit keeps half of it (the relay's fields are ~300 bytes, X-Spam-* at most ~2 KiB)
  const fromNextHop = nextHop && nextHop > 0 ? nextHop - Math.min(SIZE_ROOM_BYTES, Math.floor(nextHop / 2)) : 0;
  if (!fromNextHop) return own;
  if (!own) return fromNextHop;
  return Math.min(fromNextHop, own);
}

/** The number of an EHLO `SIZE n` line: undefined for no SIZE line, 0 for SIZE without a (valid) number. */
export function advertisedSize(ehloLines: readonly string[]): number | undefined {
  for (const line of ehloLines.slice(1)) {
    const m = /^SIZE(?:[ =](.*))?$/i.exec(line.trim());
    if (m) return sizeParameter(m[1]);
  }
  return undefined;
}

/** The parameter of SIZE as a number: 0 (no fixed limit) when absent or not a number. */
export function sizeParameter(param: string | undefined): number {
  const value = (param ?? '').trim();
  return /^\d{1,15}$/.test(value) ? Number(value) : 0;
}

/**
 * The EHLO lines with the SIZE line saying `limit` (RFC 1870: `SIZE` alone
 * when there is none). A list without SIZE keeps none: a capability the next
 * hop lacks is not advertised.
 */
export function withSizeLine(ehloLines: readonly string[], limit: number): string[] {
  return ehloLines.map((line, i) => (i > 0 && /^SIZE(?:[ =].*)?$/i.test(line.trim()) ? (limit > 0 ? `SIZE ${limit}` : 'SIZE') : line));
}

/** A MAIL SIZE= value over the limit (RFC 1870 6.1: 552 5.3.4). Unparsable values are the server's to judge. */
export function declaredTooBig(declared: string | null | undefined, limit: number): boolean {
  if (!limit || declared === null || declared === undefined || !/^\d{1,20}$/.test(declared)) return false;
  return Number(declared) > limit;
}
