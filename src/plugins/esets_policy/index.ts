// The Handle Object Policy (esets_smtp(1)): after the scanners have run
// (data_post, after the clamd plugin), decide accept / defer / discard /
// reject, add X-Virus-Scanner: to accepted mail, and log one summary line.

import DSN from 'haraka-dsn';
import constants from 'haraka-constants';
import { EsetsConfig, VerdictAction } from '../../lib/esets_options';
import {
  AvOutcome, decideAs, decideAv, describeAs, describeAv, replyFor, StageDecision,
} from '../../lib/policy';
import { parseClamdVersion, ScannerVersion, xVirusScannerValue } from '../../lib/virus_scanner_header';
import type { Connection, Next, Plugin, Transaction } from '../shared/haraka';
import { relayConfig } from '../shared/relay_config';
import { clamdVersion } from './clamd_version';

const PRODUCT = `esets-relay ${require('../../../../package.json').version as string}`;
const VERSION_REFRESH_MS = 5 * 60_000;
const DISCARD_NOTE = 'esets_policy.discard';

let scanner: ScannerVersion | undefined;

export function register(this: Plugin): void {
  const { config } = relayConfig(this);
  this.register_hook('data_post', 'apply_policy');
  // before esets_forward: a discarded message is answered 250 and not forwarded
  this.register_hook('queue', 'discard_message', -100);
  this.register_hook('queue_outbound', 'discard_message', -100);
  if (config.action_av === 'scan') watchScannerVersion(this, config);
}

/** What the clamd plugin found, as the policy's AV outcome. */
export function avOutcome(txn: Transaction): AvOutcome | undefined {
  const r = txn.results.get('clamd') as { pass?: string[]; fail?: string[]; err?: string[]; skip?: string[] } | undefined;
  if (!r) return undefined;
  if (r.fail?.length) return { kind: 'infected', names: r.fail };
  if (r.err?.length) return { kind: 'not_scanned', reason: r.err[r.err.length - 1] };
  if (r.skip?.length) return { kind: 'not_scanned', reason: r.skip[r.skip.length - 1] };
  if (r.pass?.includes('clean')) return { kind: 'clean' };
  return undefined;
}

export function apply_policy(this: Plugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (!txn) return next();
  const { config } = relayConfig(this);

  const av = avOutcome(txn);
  const avVerdict = describeAv(av, config);
  const avDecision = decideAv(config, av);
  let decision: StageDecision = avDecision;
  let asVerdict = '';
  if (avDecision.action === 'accept') {
    // spam scanning arrives with spamd support; until then the AS stage has no result
    asVerdict = describeAs(config.action_as === 'scan' ? { kind: 'not_scanned', reason: 'spamd not configured' } : undefined, config);
    decision = decideAs(config, config.action_as === 'scan' ? { kind: 'not_scanned', reason: 'spamd not configured' } : undefined);
  }

  const verdict = decision.option.startsWith('action_as') && decision.action !== 'accept' ? asVerdict : avVerdict;
  logSummary(this, connection, txn, config, decision, avVerdict, asVerdict);
  txn.results.add(this, { msg: `${decision.action} by ${decision.option}`, av: avVerdict });

  if (decision.action === 'accept') {
    if (config.add_header_xvirus) {
      txn.remove_header('X-Virus-Scanner');
      txn.add_header('X-Virus-Scanner', xVirusScannerValue(PRODUCT, scanner, avVerdict));
    }
    return next();
  }
  respond(next, txn, decision.action, verdict);
}

export function discard_message(this: Plugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (!txn?.notes.get(DISCARD_NOTE)) return next();
  next(constants.ok, replyFor('discard', '').text);
}

function respond(next: Next, txn: Transaction, action: Exclude<VerdictAction, 'accept'>, verdict: string): void {
  const reply = replyFor(action, verdict);
  const text = reply.text.replace(/^\d\.\d{1,3}\.\d{1,3} /, '');
  switch (action) {
    case 'reject': return next(constants.deny, DSN.create(reply.code, text, 7, 1));
    case 'defer': return next(constants.denysoft, DSN.create(reply.code, text, 7, 1));
    case 'discard':
      txn.notes.set(DISCARD_NOTE, true);
      return next();
  }
}

function logSummary(
  plugin: Plugin, connection: Connection, txn: Transaction, config: EsetsConfig,
  decision: StageDecision, avVerdict: string, asVerdict: string,
): void {
  const line = [
    `action=${decision.action}`,
    `by=${decision.option}`,
    `from=${txn.mail_from.format()}`,
    `to=${txn.rcpt_to[0]?.format() ?? '<>'}`,
    `rcpts=${txn.rcpt_to.length}`,
    `av="${avVerdict}"`,
    asVerdict ? `as="${asVerdict}"` : '',
    `message_id=${txn.header.get('Message-ID').trim() || '-'}`,
    `size=${txn.data_bytes}`,
  ].filter(Boolean).join(' ');
  if (decision.action === 'accept') connection.lognotice(plugin, line);
  else connection.logwarn(plugin, line);
}

function watchScannerVersion(plugin: Plugin, config: EsetsConfig): void {
  const refresh = (): void => {
    clamdVersion(config.daemon_sock_path[0], 2000)
      .then((reply) => {
        scanner = parseClamdVersion(reply) ?? scanner;
      })
      .catch((err: Error) => plugin.logwarn(`clamd VERSION: ${err.message}`));
  };
  refresh();
  setInterval(refresh, VERSION_REFRESH_MS).unref();
}
