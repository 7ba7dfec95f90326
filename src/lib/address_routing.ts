// Which user section a recipient and sender with routing in their local parts
// (percent hack, bang paths, quoted @) get (issue 23). Every address the server
// may deliver to (lib/delivery_readings) is read; when they all choose one
// section, that is the section. Otherwise address_routing decides: `refuse`
// (default) refuses the address, `delivered` takes the section of the address
// the server's resolver ends at, assuming it resolves every step. Never the
// section of the address as written merely because it was written.

import { addressKeys } from './address_keys';
import { ADDRESS_ROUTING, AddressRouting, deliveryReadings, exceedsReadings, resolvedReading } from './delivery_readings';

export { ADDRESS_ROUTING };
export type { AddressRouting };

/** An address's match keys (addressKeys), MISSING (undefined) or NO_KEYS: what a section lookup takes. */
export type Keys = readonly string[] | undefined;

/** How one address (recipient or sender) may be read. */
export interface AddressRoutes {
  /** the address as written first, then every address the server may deliver it to */
  readings: Keys[];
  /** the address the server ends at if it resolves every routing step */
  resolved: Keys;
  /** more readings than the relay reads: where it goes is not judged */
  exceeds: boolean;
}

/** An address without an address (the null sender, a missing part): one reading. */
export function fixedRoutes(keys: Keys): AddressRoutes {
  return { readings: [keys], resolved: keys, exceeds: false };
}

/** The routes of `local@domain`. */
export function addressRoutes(local: string, domain: string): AddressRoutes {
  const r = resolvedReading(local, domain);
  return {
    readings: deliveryReadings(local, domain).map((x) => addressKeys(x.local, x.domain)),
    resolved: addressKeys(r.local, r.domain),
    exceeds: exceedsReadings(local, domain),
  };
}

/** The keys whose section the message gets (`resolved`: the delivered addresses'), or the side refused. */
export type RoutingChoice =
  | { rcpt: Keys; sender: Keys; resolved: boolean }
  | { refused: 'recipient' | 'sender' };

/**
 * The section for a recipient and a sender: `sectionOf(rcptKeys, senderKeys)`
 * over their readings. When every pair chooses the section of the addresses
 * as written, those (`resolved: false`). Else, with `refuse`, the side whose
 * routing differs is refused (the recipient's first); with `delivered`, both
 * resolved addresses (`resolved: true`). An address with
 * more readings than the relay reads is refused under both.
 */
export function chooseSection<S>(
  rcpt: AddressRoutes, sender: AddressRoutes, mode: AddressRouting, sectionOf: (rcptKeys: Keys, senderKeys: Keys) => S,
): RoutingChoice {
  if (rcpt.exceeds) return { refused: 'recipient' };
  if (sender.exceeds) return { refused: 'sender' };
  const written = sectionOf(rcpt.readings[0], sender.readings[0]);
  const differs = (rs: Keys[], ss: Keys[]): boolean => rs.some((r) => ss.some((s) => sectionOf(r, s) !== written));
  // the recipient's routing alone, then the sender's against every recipient reading
  const refused = differs(rcpt.readings, sender.readings.slice(0, 1)) ? 'recipient'
    : differs(rcpt.readings, sender.readings) ? 'sender' : undefined;
  if (!refused) return { rcpt: rcpt.readings[0], sender: sender.readings[0], resolved: false };
  if (mode === 'delivered') return { rcpt: rcpt.resolved, sender: sender.resolved, resolved: true };
  return { refused };
}
