// The quarantine from the policy's side (docs/quarantine.md): a message the
// policy stops as infected or banned, or the original of a cleaned one, is
// stored before the client is answered; a store that fails turns the answer
// into a defer (nothing lost, nothing infected passes). The manager runs the
// expiry. The store itself is io/quarantine_store.

import cluster from 'node:cluster';
import { Readable } from 'node:stream';
import type { CapturedMessage } from '../../io/captured_message';
import { FolderQuarantineStore } from '../../io/quarantine_store';
import { startQuarantineExpiry } from '../../io/quarantine_expiry';
import type { EsetsConfig } from '../../lib/esets_options';
import type { PolicyDecision } from '../../lib/policy';
import { QuarantineEntry, quarantineDir, QuarantineVerdict } from '../../lib/quarantine';
import { RelayMessage, sectionName } from '../../session/relay_message';
import { remoteName } from '../shared/haraka';
import type { Connection, Plugin, Transaction } from '../shared/haraka';
import { relayConfig } from '../shared/relay_config';
import { relayLog } from '../shared/relay_log';
import { traceId } from '../shared/trace_id';

/** The store of the configuration in force (daemon_quarantine is a [global] option: no user section changes it). */
export function quarantineStore(plugin: Plugin): FolderQuarantineStore {
  const rc = relayConfig(plugin);
  return new FolderQuarantineStore(quarantineDir(rc.config, rc.file));
}

/**
 * Stores the message (the bytes the client sent, un-stuffed; a cleaned
 * message's original) with what is known of it; resolves with the entry once
 * it is durable. `action`: what the client is told.
 */
export async function keepInQuarantine(
  plugin: Plugin, connection: Connection, txn: Transaction, message: RelayMessage, captured: CapturedMessage,
  kept: { verdict: QuarantineVerdict; threats: string[] }, decision: PolicyDecision, config: EsetsConfig,
): Promise<QuarantineEntry> {
  const bytes = kept.verdict === 'cleaned' && captured.original ? Readable.from([captured.original]) : captured.read();
  const confirmedName = remoteName(connection);
  const store = quarantineStore(plugin);
  const entry = await store.put({
    traceId: traceId(connection, txn),
    client: { address: connection.remote.ip, helo: connection.hello.host ?? '', ...(confirmedName ? { name: confirmedName } : {}) },
    sender: txn.mail_from.format(),
    recipients: txn.rcpt_to.map((r) => r.format()),
    verdict: kept.verdict,
    threats: kept.threats,
    action: decision.action === 'defer' ? 'reject' : decision.action,
    decidedBy: { option: decision.option, section: message.section ? sectionName(message.section) : '' },
    messageId: txn.header.get('Message-ID').split('\n')[0].trim(),
  }, bytes);
  relayLog(plugin, connection, config).info(`quarantined as ${entry.id} (${kept.verdict}, ${entry.size} bytes) in ${store.dir}`);
  return entry;
}

let expiryStarted = false;

/** In the manager (or a single process): expiry at start and hourly, with the limits in force at each run. */
export function runQuarantineExpiry(plugin: Plugin): void {
  if (expiryStarted || cluster.isWorker) return;
  expiryStarted = true;
  startQuarantineExpiry(() => {
    const rc = relayConfig(plugin);
    return {
      dir: quarantineDir(rc.config, rc.file),
      limits: { maxAgeS: rc.config.quarantine_max_age, maxBytes: rc.config.quarantine_max_size },
    };
  }, (r) => {
    const byAge = r.expired.filter((e) => e.why === 'age').length;
    relayLog(plugin).info(`quarantine ${r.dir}: ${r.expired.length} expired (${byAge} past quarantine_max_age, `
      + `${r.expired.length - byAge} over quarantine_max_size)`);
  }, (err) => relayLog(plugin).warning(`quarantine expiry failed: ${err.message}`));
}
