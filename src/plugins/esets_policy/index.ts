// The Handle Object Policy (esets_smtp(1)): at data_post, the AV stage
// (clamd, and cleaning) then, only if it accepted, the AS stage (spamd);
// each stage's action decides accept / defer / discard / reject. Accepted
// mail gets X-Virus-Scanner: (and X-Spam-* when spam-scanned); every message
// gets one summary log line.

import DSN from 'haraka-dsn';
import constants from 'haraka-constants';
import { EsetsConfig, VerdictAction } from '../../lib/esets_options';
import {
  AsOutcome, AvOutcome, decideAv, decidePolicy, deliversOnlyClean, describeAs, describeAv, replyFor, StageDecision,
} from '../../lib/policy';
import { xSpamStatus } from '../../lib/spamd_reply';
import { errorLine, summaryLine } from '../../lib/syslog';
import { parseClamdVersion, ScannerVersion, xVirusScannerValue } from '../../lib/virus_scanner_header';
import type { Connection, Next, Plugin, Transaction } from '../shared/haraka';
import { EarlyForward, earlyForwardStarter } from '../shared/early_forward';
import { relayConfig } from '../shared/relay_config';
import { writeLog } from '../shared/relay_log';
import { scanForSpam } from './antispam';
import { scanForViruses } from './antivirus';
import type { ClamdOptions } from './clamd_client';
import { clamdVersion } from './clamd_version';
import { LiveScan, tapTransaction } from './live_scan';
import { MESSAGE_CONFIG, MessageConfig } from '../shared/message_config';
import { checkClamdConf } from './clamd_conf_check';

const PRODUCT = `esets-relay ${require('../../../../package.json').version as string}`;
const VERSION_REFRESH_MS = 5 * 60_000;
const CLAMD_CONNECT_TIMEOUT_MS = 2_000;
const CLAMD_SCAN_TIMEOUT_S = 60;
const DISCARD_NOTE = 'esets_policy.discard';

let scanner: ScannerVersion | undefined;
const liveScans = new WeakMap<Transaction, LiveScan>();

export function register(this: Plugin): void {
  const { config } = relayConfig(this);
  this.register_hook('data', 'start_live_scan');
  this.register_hook('data_post', 'apply_policy');
  this.register_hook('reset_transaction', 'stop_live_scan');
  // before esets_forward: a discarded message is answered 250 and not forwarded
  this.register_hook('queue', 'discard_message', -100);
  this.register_hook('queue_outbound', 'discard_message', -100);
  watchScannerVersion(this, config);
  checkClamdConf(this);
}

interface Verdicts {
  av?: AvOutcome;
  as?: AsOutcome;
  spamTests: string[];
  decision: StageDecision;
}

/** The message's own configuration (its user section), else the agent section. */
function configOf(plugin: Plugin, txn: Transaction): EsetsConfig {
  return (txn.notes.get(MESSAGE_CONFIG) as MessageConfig | undefined)?.config ?? relayConfig(plugin).config;
}

function clamdOptions(config: EsetsConfig): ClamdOptions {
  return {
    addresses: config.daemon_sock_path,
    connectTimeoutMs: CLAMD_CONNECT_TIMEOUT_MS,
    scanTimeoutMs: (config.av_scan_obj_timeout || CLAMD_SCAN_TIMEOUT_S) * 1000,
  };
}

/** At DATA: the message goes to clamd as it arrives (see live_scan.ts). */
export function start_live_scan(this: Plugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  const config = txn && configOf(this, txn);
  if (txn && config?.action_av === 'scan') {
    const scan = new LiveScan(clamdOptions(config), config.av_scan_obj_max_size);
    liveScans.set(txn, scan);
    tapTransaction(txn, scan);
  }
  next();
}

export function stop_live_scan(this: Plugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (txn) liveScans.get(txn)?.cancel();
  next();
}

export function apply_policy(this: Plugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (!txn) return next();
  const config = configOf(this, txn);
  const started = Date.now();
  const live = liveScans.get(txn);
  const early = live && !live.settled ? startEarlyForward(txn, config) : undefined;
  decide(config, txn, live, early)
    .then((verdicts) => {
      if (early && verdicts.decision.action !== 'accept') early.abort();
      if (connection.remote.closed) return;
      finish(this, connection, txn, config, verdicts, Date.now() - started, next, !!early);
    })
    .catch((err: Error) => {
      early?.abort();
      writeLog(this, connection, config, errorLine(`policy failed: ${err.stack ?? err.message}`));
      if (!connection.remote.closed) next(constants.denysoft, DSN.create(451, 'Temporary failure while scanning, try again later', 4, 0));
    });
}

/**
 * clamd is still scanning and only a clean message can be delivered: the message
 * goes to the mail server now, with the header it will carry if clean, and
 * esets_forward holds back the final dot (see shared/early_forward.ts).
 */
function startEarlyForward(txn: Transaction, config: EsetsConfig): EarlyForward | undefined {
  const start = earlyForwardStarter(txn);
  if (!start || !deliversOnlyClean(config)) return undefined;
  addVirusScannerHeader(txn, config, describeAv({ kind: 'clean' }, config));
  return start();
}

async function decide(config: EsetsConfig, txn: Transaction, live: LiveScan | undefined, early: EarlyForward | undefined): Promise<Verdicts> {
  const av = config.action_av === 'scan'
    ? await scanForViruses(txn, {
      clamd: clamdOptions(config),
      maxSize: config.av_scan_obj_max_size,
      cleanMode: config.av_clean_mode,
      product: PRODUCT,
    }, live, early)
    : undefined;
  const avDecision = decideAv(config, av);
  if (avDecision.action !== 'accept') return { av, spamTests: [], decision: avDecision };

  let as: AsOutcome | undefined;
  let spamTests: string[] = [];
  if (config.action_as === 'scan') {
    const result = await scanForSpam(txn, {
      spamd: { address: config.spamd_addr, timeoutMs: config.spamd_timeout * 1000 },
      maxSize: config.spamd_max_size,
    });
    as = result.outcome;
    spamTests = result.tests;
  }
  return { av, as, spamTests, decision: decidePolicy(config, av, as) };
}

/** `sentEarly`: the message went to the server with its headers before the verdict */
function finish(
  plugin: Plugin, connection: Connection, txn: Transaction, config: EsetsConfig,
  verdicts: Verdicts, elapsedMs: number, next: Next, sentEarly: boolean,
): void {
  const { decision } = verdicts;
  const avVerdict = describeAv(verdicts.av, config);
  const asVerdict = decision.option.startsWith('action_as') ? describeAs(verdicts.as, config) : '';
  const verdict = decision.option.startsWith('action_as') ? asVerdict : avVerdict;

  txn.results.add(plugin, { msg: `${decision.action} by ${decision.option}`, av: avVerdict, as: asVerdict || undefined });
  writeLog(plugin, connection, config, summaryLine(decision.action === 'accept', [
    `action=${decision.action}`,
    `by=${decision.option}`,
    `from=${txn.mail_from.format()}`,
    `to=${txn.rcpt_to[0]?.format() ?? '<>'}`,
    `section=${(txn.notes.get(MESSAGE_CONFIG) as MessageConfig | undefined)?.section?.replace(/ \(line \d+\)$/, '') ?? '[smtp]'}`,
    `rcpts=${txn.rcpt_to.length}`,
    `av="${avVerdict}"`,
    asVerdict ? `as="${asVerdict}"` : '',
    `message_id=${txn.header.get('Message-ID').trim() || '-'}`,
    `size=${txn.data_bytes}`,
    `time=${elapsedMs}ms`,
  ].filter(Boolean).join(' ')));

  if (decision.action === 'accept') {
    if (!sentEarly) addHeaders(txn, config, verdicts, avVerdict);
    return next();
  }
  respond(next, txn, decision.action, verdict);
}

function addVirusScannerHeader(txn: Transaction, config: EsetsConfig, avVerdict: string): void {
  if (!config.add_header_xvirus) return;
  txn.remove_header('X-Virus-Scanner');
  txn.add_header('X-Virus-Scanner', xVirusScannerValue(PRODUCT, scanner, avVerdict));
}

function addHeaders(txn: Transaction, config: EsetsConfig, verdicts: Verdicts, avVerdict: string): void {
  addVirusScannerHeader(txn, config, avVerdict);
  const as = verdicts.as;
  if (as && as.kind !== 'not_scanned') {
    txn.remove_header('X-Spam-Status');
    txn.remove_header('X-Spam-Score');
    txn.add_header('X-Spam-Status', xSpamStatus({ spam: as.kind === 'spam', score: as.score, threshold: as.threshold, tests: verdicts.spamTests }));
    txn.add_header('X-Spam-Score', as.score.toFixed(1));
  }
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

function watchScannerVersion(plugin: Plugin, config: EsetsConfig): void {
  const refresh = (): void => {
    clamdVersion(config.daemon_sock_path[0], CLAMD_CONNECT_TIMEOUT_MS)
      .then((reply) => {
        scanner = parseClamdVersion(reply) ?? scanner;
      })
      .catch((err: Error) => plugin.logwarn(`clamd VERSION from ${config.daemon_sock_path[0]}: ${err.message}`));
  };
  refresh();
  setInterval(refresh, VERSION_REFRESH_MS).unref();
}
