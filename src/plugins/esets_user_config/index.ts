// User-specific configuration (esets_smtp(1)): once the first recipient is
// known, the section of user_config matching it and the sender gives the
// message its effective configuration, which the policy then uses. With
// split_recipients = yes, a later recipient whose section differs is
// deferred (451 4.5.3) so that the client sends it in a transaction of its own.
// The null sender <> matches sender parts as null_sender_matches_sender_sections says.

import constants from 'haraka-constants';
import { addressKeys } from '../../lib/address_keys';
import { addressRoutes, AddressRoutes, chooseSection, fixedRoutes } from '../../lib/address_routing';
import type { UserSection } from '../../lib/user_config';
import { MISSING, nullSenderKeys } from '../../lib/user_section_index';
import type { Address, Connection, Next, Plugin, Transaction } from '../shared/haraka';
import { messageOf } from '../shared/transaction_message';
import { configFor, relayConfig } from '../shared/relay_config';
import { RCPT_PRIORITY } from '../shared/hook_order';
import { useShortName } from '../shared/plugin_name';
import { relayAnswer } from '../shared/relay_answer';

export function register(this: Plugin): void {
  useShortName(this);
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
  // as written, else address_routing decides: routing (victim%example.org@lenient.example) never borrows a lax section
  const choice = chooseSection(routesOf(params[0]), senderRoutes(txn, rc.config.null_sender_matches_sender_sections),
    rc.config.address_routing, (r, s) => configFor(rc, r, s).section);
  if ('refused' in choice) {
    const recipientSide = choice.refused === 'recipient';
    txn.results.add(this, { fail: `${choice.refused} routing reads under another section` });
    return next(constants.deny, relayAnswer(connection, { kind: recipientSide ? 'recipient_routing' : 'sender_routing' }, txn));
  }
  const { config, section } = configFor(rc, choice.rcpt, choice.sender);
  if (choice.resolved) txn.results.add(this, { msg: `routing: ${params[0].format()} under its delivered address's section` });

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
    return next(constants.denysoft, relayAnswer(connection, { kind: 'another_policy' }, txn));
  }
  next();
}

function label(section: UserSection | undefined): string | undefined {
  return section ? `[${section.name}] (line ${section.line})` : undefined;
}

/** The routes of a recipient or sender: every address the server may deliver it to. */
function routesOf(address: Address): AddressRoutes {
  if (address.isNull() || !address.user || !address.host) {
    return fixedRoutes(address.isNull() ? MISSING : addressKeys(address.user, address.host));
  }
  return addressRoutes(address.user, address.host);
}

function senderRoutes(txn: Transaction, nullMatchesSenderSections: boolean): AddressRoutes {
  const from = txn.mail_from;
  return !from || from.isNull() ? fixedRoutes(nullSenderKeys(nullMatchesSenderSections)) : routesOf(from);
}
