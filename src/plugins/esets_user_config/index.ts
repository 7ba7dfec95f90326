// User-specific configuration (esets_smtp(1)): once the first recipient is
// known, the section of user_config matching it and the sender gives the
// message its effective configuration, which the policy then uses. With
// split_recipients = yes, a later recipient whose section differs is
// deferred (451 4.5.3) so that the client sends it in a transaction of its own.
// The null sender <> matches sender parts as null_sender_matches_sender_sections says.

import DSN from 'haraka-dsn';
import constants from 'haraka-constants';
import { addressKeys } from '../../lib/address_keys';
import { deliveryReadings } from '../../lib/delivery_readings';
import type { UserSection } from '../../lib/user_config';
import { MISSING, nullSenderKeys } from '../../lib/user_section_index';
import type { Address, Connection, Next, Plugin, Transaction } from '../shared/haraka';
import { messageOf } from '../shared/transaction_message';
import { configFor, relayConfig } from '../shared/relay_config';
import { RCPT_PRIORITY } from '../shared/hook_order';

export function register(this: Plugin): void {
  relayConfig(this);
  // first of all rcpt hooks (Haraka stops at the first plugin that accepts, e.g. rcpt_to.in_host_list),
  // and before esets_forward's (-99): a recipient deferred here never reaches the server
  this.register_hook('rcpt', 'select_section', RCPT_PRIORITY.selectSection);
}

export function select_section(this: Plugin, next: Next, connection: Connection, params: [Address]): void {
  const txn = connection.transaction;
  if (!txn) return next();
  const rc = relayConfig(this);
  // every address the server may deliver to (lib/delivery_readings) must choose the same section as the address
  // as written: else routing in a local part (victim%example.org@lenient.example) would borrow a lax section
  const rcptReadings = readingKeys(params[0]);
  const senderReadings = senderReadingKeys(txn, rc.config.null_sender_matches_sender_sections);
  const { config, section } = configFor(rc, rcptReadings[0], senderReadings[0]);
  for (const r of rcptReadings.length + senderReadings.length > 2 ? rcptReadings : []) {
    for (const s of senderReadings) {
      if (configFor(rc, r, s).section === section) continue;
      const recipientSide = rcptReadings.length > 1;
      txn.results.add(this, { fail: `${recipientSide ? 'recipient' : 'sender'} routing reads under another section` });
      return next(constants.deny, DSN.create(
        550, `${recipientSide ? 'Recipient' : 'Sender'} address routing (%, !, quoted @) not accepted here`, 1, recipientSide ? 3 : 7,
      ));
    }
  }

  // rcpt_to holds the recipients accepted so far (Haraka adds this one before the hook
  // and removes it if refused): the first accepted recipient decides
  const message = messageOf(txn);
  if (txn.rcpt_to.every((r) => r === params[0])) {
    message.config = config;
    message.section = section && { name: section.name, line: section.line };
    txn.results.add(this, { msg: `section ${label(section) ?? '[smtp]'}` });
    return next();
  }
  if (rc.config.split_recipients && message.config && message.section?.line !== section?.line) {
    txn.results.add(this, { msg: `split: ${params[0].format()} is under ${label(section) ?? '[smtp]'}` });
    return next(constants.denysoft, DSN.create(451, 'Recipient has another policy, send it in a separate transaction', 5, 3));
  }
  next();
}

function label(section: UserSection | undefined): string | undefined {
  return section ? `[${section.name}] (line ${section.line})` : undefined;
}

/** The keys of each address the server may deliver `address` to, the address as written first. */
function readingKeys(address: Address): (readonly string[] | undefined)[] {
  if (address.isNull() || !address.user || !address.host) return [address.isNull() ? MISSING : addressKeys(address.user, address.host)];
  return deliveryReadings(address.user, address.host).map((r) => addressKeys(r.local, r.domain));
}

function senderReadingKeys(txn: Transaction, nullMatchesSenderSections: boolean): (readonly string[] | undefined)[] {
  const from = txn.mail_from;
  return !from || from.isNull() ? [nullSenderKeys(nullMatchesSenderSections)] : readingKeys(from);
}
