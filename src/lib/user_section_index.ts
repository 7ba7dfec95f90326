// Finds the first user section (in file order) whose both parts match, in a
// few map lookups whatever the number of sections: each section has exactly
// one recipient part and one sender part, so "first section whose parts are
// among the address's keys" is the smallest index over the key pairs.

import { UserSection } from './user_config';

/** An address absent from the message (no recipient yet, the null sender): matches any part. */
export const MISSING = undefined;

/** An address with no key at all: it matches only a section part that is absent. */
export const NO_KEYS: readonly string[] = Object.freeze([]);

/**
 * The keys the null sender <> is matched under. The manual's letter (a missing part matches)
 * lets it match every sender part; null_sender_matches_sender_sections = no keeps bounces
 * out of sections that name a sender (a trusted-sender exemption would exempt every bounce).
 */
export function nullSenderKeys(matchesSenderSections: boolean): readonly string[] | undefined {
  return matchesSenderSections ? MISSING : NO_KEYS;
}

export class UserSectionIndex {
  private readonly byPair = new Map<string, number>();
  private readonly byRcpt = new Map<string, number>();
  private readonly bySender = new Map<string, number>();

  constructor(readonly sections: readonly UserSection[]) {
    sections.forEach((s, i) => {
      const pair = `${s.rcpt}\0${s.sender}`;
      if (!this.byPair.has(pair)) this.byPair.set(pair, i);
      if (!this.byRcpt.has(s.rcpt)) this.byRcpt.set(s.rcpt, i);
      if (!this.bySender.has(s.sender)) this.bySender.set(s.sender, i);
    });
  }

  /**
   * rcptKeys/senderKeys: addressKeys() of the first recipient and the sender,
   * MISSING, or NO_KEYS. Returns the first matching section, or undefined (the agent section).
   */
  match(rcptKeys: readonly string[] | undefined, senderKeys: readonly string[] | undefined): UserSection | undefined {
    if (!this.sections.length) return undefined;
    // a section part that is absent ('') matches any address
    const r = rcptKeys === MISSING ? undefined : [...rcptKeys, ''];
    const s = senderKeys === MISSING ? undefined : [...senderKeys, ''];
    let best = Infinity;
    if (!r && !s) best = 0;
    else if (!r) for (const k of s!) best = Math.min(best, this.bySender.get(k) ?? Infinity);
    else if (!s) for (const k of r) best = Math.min(best, this.byRcpt.get(k) ?? Infinity);
    else for (const rk of r) for (const sk of s) best = Math.min(best, this.byPair.get(`${rk}\0${sk}`) ?? Infinity);
    return best === Infinity ? undefined : this.sections[best];
  }
}
