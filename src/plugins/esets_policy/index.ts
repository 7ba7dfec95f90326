// The Handle Object Policy (esets_smtp(1)): at data_post, the AV stage
// (clamd, and cleaning) then, only if it accepted, the AS stage (spamd);
// each stage's action decides accept / defer / discard / reject. Accepted
// mail gets X-Virus-Scanner: (and X-Spam-* when spam-scanned); every message
// gets one summary log line.

import DSN from 'haraka-dsn';
import constants from 'haraka-constants';
import { EsetsConfig, VerdictAction } from '../../lib/esets_options';
import type { CapturedMessage } from '../../io/captured_message';
import {
  AsOutcome, AvOutcome, decideAv, decidePolicy, describeAs, describeAv, replyFor, StageDecision, wasScanned,
} from '../../lib/policy';
import { ClamdPluginResults, clamdPluginWarnings, pluginCopyDiffers, verdictFromClamdPlugin } from '../../lib/clamd_plugin_verdict';
import { CLAMD_PLUGIN_NAMES } from '../../lib/haraka_deployment';
import type { HeaderField } from '../../lib/smtp_data';
import { xSpamStatus } from '../../lib/spamd_reply';
import { errorLine, summaryLine, word } from '../../lib/syslog';
import { parseClamdVersion, ScannerVersion, xVirusScannerValue } from '../../lib/virus_scanner_header';
import { finalDotAt } from '../shared/haraka';
import type { Connection, Next, Plugin, Transaction } from '../shared/haraka';
import { HEADER_EDITS, HeaderEdits, isScannerField } from '../shared/header_edits';
import { captureMessage, finishedMessage } from '../shared/message_capture';
import { DISCARDED, SERVER_OUTCOME, SERVER_SENDING, ServerOutcome } from '../shared/policy_outcome';
import { CLAMD_BACKOFF_MS, CLAMD_CONNECT_MS, CLAMD_VERSION_MS, drainMs, HOOK_TIMEOUT_S, messageBudget } from '../../lib/timeout_budget';
import { relayConfig } from '../shared/relay_config';
import { pluginList } from '../shared/haraka_deployment';
import { holdClientTimeout, relayWaits, releaseClientTimeout } from '../shared/relay_waits';
import { DATA_POST_PRIORITY } from '../shared/hook_order';
import { useStopSignals } from '../shared/stop_signals';
import { relayLog, writeLog } from '../shared/relay_log';
import { scanForSpam } from './antispam';
import { scanForViruses } from './antivirus';
import { clamdEvents, ClamdOptions, ScanReport } from '../../io/clamd_client';
import { clamdVersion } from '../../io/clamd_version';
import { relayMetrics } from '../../io/relay_metrics';
import { attachLiveScan, LiveScan } from './live_scan';
import { MESSAGE_CONFIG, MessageConfig, sectionName } from '../shared/message_config';
import { checkClamdConf } from './clamd_conf_check';

const PRODUCT = `esets-relay ${require('../../../../package.json').version as string}`;
const VERSION_REFRESH_MS = 5 * 60_000;

const RUN_NOTE = 'esets_policy.run';
/** the message's summary, written once the client has its answer (reset_transaction) */
const SUMMARY_NOTE = 'esets_policy.summary';

let scanner: ScannerVersion | undefined;
/** who scans for viruses: our clamd client, or haraka-plugin-clamd listed in config/plugins (its results read) */
let avSource: 'relay' | 'haraka-plugin-clamd' = 'relay';
/** haraka-plugin-clamd's tag; removed when it added one (the message stays as the client sent it) */
const PLUGIN_VIRUS_HEADER = 'X-Haraka-Virus';
const HEADER_COUNT_NOTE = 'esets_policy.plugin_header_count';
/** connection.ini [headers] max_lines: the header lines Haraka keeps in its copy */
let harakaHeaderLines = 1000;

/** The policy's work on one transaction: its live scan, and a signal that the transaction ended. */
interface PolicyRun {
  live?: LiveScan;
  ended: AbortController;
  /** the transaction was reset before its summary was ready (the client left): write it at once */
  reset?: boolean;
  /** its summary line was written */
  summarized?: boolean;
  /** writes a debug line per clamd answer; unset when debug lines are not written */
  onVerdict?: (report: ScanReport) => void;
}

export function register(this: Plugin): void {
  const { config } = relayConfig(this);
  // Haraka's hook timeout above every wait of ours (lib/timeout_budget): ours answer first, with the policy's reply
  this.timeout = HOOK_TIMEOUT_S;
  useStopSignals(this, drainMs(config));
  avSource = clamdPluginListed(this) ? 'haraka-plugin-clamd' : 'relay';
  if (avSource === 'haraka-plugin-clamd') {
    checkClamdPlugin(this, config);
    const ini = this.config.get('connection.ini') as { headers?: { max_lines?: number | string } } | undefined;
    harakaHeaderLines = Number(ini?.headers?.max_lines) || 1000;
    this.register_hook('data_post', 'note_header_count', DATA_POST_PRIORITY.beforeScanners);
  }
  this.register_hook('data', 'start_live_scan');
  this.register_hook('data_post', 'hold_client_timeout', DATA_POST_PRIORITY.beforeScanners);
  this.register_hook('data_post', 'apply_policy', DATA_POST_PRIORITY.policy);
  this.register_hook('reset_transaction', 'end_transaction');
  // before esets_forward: a discarded message is answered 250 and not forwarded
  this.register_hook('queue', 'discard_message', -100);
  this.register_hook('queue_outbound', 'discard_message', -100);
  if (avSource === 'relay') {
    watchScannerVersion(this, config.daemon_sock_path[0]);
    checkClamdConf(this);
  } else {
    // X-Virus-Scanner: names the engine haraka-plugin-clamd asks (its first clamd_socket)
    const ini = this.config.get('clamd.ini') as ClamdIni | undefined;
    const first = String(ini?.main?.clamd_socket ?? 'localhost:3310').split(/[,; ]+/).filter(Boolean)[0];
    if (first) watchScannerVersion(this, first);
  }
  reportFailingDaemons(this);
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

function clamdOptions(config: EsetsConfig, onVerdict?: (report: ScanReport) => void): ClamdOptions {
  return { addresses: config.daemon_sock_path, connectTimeoutMs: CLAMD_CONNECT_MS, scanTimeoutMs: messageBudget(config).clamdScanMs, onVerdict };
}

/** Which clamd answered for the message, what and how fast: only when debug lines are written (else nothing per scan). */
function verdictReporter(plugin: Plugin, connection: Connection, txn: Transaction, config: EsetsConfig): ((report: ScanReport) => void) | undefined {
  const log = relayLog(plugin, connection, config);
  if (!log.wants('debug')) return undefined;
  return (r) => log.debug(() => [
    ['event', word('clamd_scan')], ['session', word(txn.uuid)], ['daemon', r.address], ['live', word(r.live ? 'yes' : 'no')],
    ['verdict', describeAv(r.verdict, config)], ['time', word(`${r.ms}ms`)],
  ]);
}

/** At DATA: the relay's copy of the message, and the live scan: the message goes to clamd as it arrives (see live_scan.ts). */
export function start_live_scan(this: Plugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (!txn) return next();
  const message = captureMessage(txn);
  const run: PolicyRun = { ended: new AbortController() };
  txn.notes.set(RUN_NOTE, run);
  const config = configOf(this, txn);
  if (config.action_av === 'scan' && avSource === 'relay') {
    run.onVerdict = verdictReporter(this, connection, txn, config);
    run.live = new LiveScan(clamdOptions(config, run.onVerdict), config.av_scan_obj_max_size);
    attachLiveScan(message, run.live);
  }
  next();
}

/**
 * The transaction ended (answered, reset, or the client left): scans in flight
 * stop, and the message's summary is written with what the client was told.
 */
/** The final dot: the client now waits for the relay's answer (relay_waits holdClientTimeout). */
export function hold_client_timeout(this: Plugin, next: Next, connection: Connection): void {
  holdClientTimeout(connection);
  next();
}

export function end_transaction(this: Plugin, next: Next, connection: Connection): void {
  releaseClientTimeout(connection);
  const txn = connection.transaction;
  const run = txn?.notes.get(RUN_NOTE) as PolicyRun | undefined;
  if (txn && run) {
    run.live?.cancel();
    run.ended.abort('transaction ended');
    run.reset = true;
    const summary = txn.notes.get(SUMMARY_NOTE) as Summary | undefined ?? refusedByHaraka(this, connection, txn);
    txn.notes.set(SUMMARY_NOTE, undefined);
    if (summary) writeSummaryWhenSent(this, connection, txn, run, summary);
  }
  next();
}

/** The message Haraka itself refused at the end of DATA (its size limit, Received: loop, bare LF), before the policy ran. */
function refusedByHaraka(plugin: Plugin, connection: Connection, txn: Transaction): Summary | undefined {
  const run = txn.notes.get(RUN_NOTE) as PolicyRun | undefined;
  const code = clientAnswer(connection).slice(0, 1);
  if (!run || run.summarized || (code !== '4' && code !== '5')) return undefined;
  return { config: configOf(plugin, txn), action: code === '5' ? 'reject' : 'defer', option: 'haraka', size: txn.data_bytes, scanMs: 0 };
}

/**
 * The summary says what the server did: if the client left while the message
 * was on its way, the line waits for the server's answer (its own deadline bounds that).
 */
function writeSummaryWhenSent(plugin: Plugin, connection: Connection, txn: Transaction, run: PolicyRun, summary: Summary): void {
  run.summarized = true;
  const sending = txn.notes.get(SERVER_SENDING) as Promise<void> | undefined;
  if (sending && txn.notes.get(SERVER_OUTCOME) === 'unknown') void sending.then(() => logSummary(plugin, connection, txn, summary));
  else logSummary(plugin, connection, txn, summary);
}

export function apply_policy(this: Plugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (!txn) return next();
  const config = configOf(this, txn);
  const started = Date.now();
  const message = finishedMessage(txn);
  const run = txn.notes.get(RUN_NOTE) as PolicyRun | undefined;
  if (!message || !run) {
    writeLog(this, connection, config, errorLine('policy failed: no captured message'));
    return next(constants.denysoft, DSN.create(451, 'Temporary failure while scanning, try again later', 4, 0));
  }
  if (message.malformed) {
    // never passed on and never normalised: servers read such line endings differently (README "Security")
    run.live?.cancel();
    stageSummary(this, connection, txn, run, {
      config, action: 'reject', option: 'message_format', verdict: message.malformed, size: message.size, scanMs: 0,
    });
    return next(constants.deny, DSN.create(550, `Message refused: ${message.malformed}`, 6, 0));
  }
  const differs = avSource === 'haraka-plugin-clamd' && config.action_av === 'scan' ? pluginCopyDiffers(message, harakaHeaderLines) : undefined;
  if (differs) {
    stageSummary(this, connection, txn, run, { config, action: 'reject', option: 'message_format', verdict: differs, size: message.size, scanMs: 0 });
    return next(constants.deny, DSN.create(550, `Message refused: ${differs}`, 6, 0));
  }
  const pluginAv = avSource === 'haraka-plugin-clamd' ? verdictFromClamdPlugin(txn.results.get('clamd') as ClamdPluginResults | undefined) : undefined;
  if (pluginAv) removePluginHeaders(txn);
  relayWaits(connection, () => decide(config, message, run, finalDotAt(txn), pluginAv))
    .then((verdicts) => {
      finish(this, connection, txn, run, config, message, verdicts, Date.now() - started, next);
    })
    .catch((err: Error) => {
      writeLog(this, connection, config, errorLine(`policy failed: ${err.stack ?? err.message}`));
      if (!connection.remote.closed) next(constants.denysoft, DSN.create(451, 'Temporary failure while scanning, try again later', 4, 0));
    });
}

/**
 * Scanning as a whole ends at the budget's bound after the final dot (the mail
 * server keeps the rest of timeout_message), or when the transaction ends;
 * a scan still running then counts as not scanned.
 */
function scanningSignal(config: EsetsConfig, run: PolicyRun, dotAt: number): { signal: AbortSignal; deadline: number; done(): void } {
  const { scanningMs } = messageBudget(config);
  const deadline = dotAt + scanningMs;
  const timeUp = new AbortController();
  const timer = setTimeout(() => timeUp.abort(`scanning took longer than the ${scanningMs / 1000} s timeout_message leaves it`), Math.max(0, deadline - Date.now()));
  return { signal: AbortSignal.any([run.ended.signal, timeUp.signal]), deadline, done: () => clearTimeout(timer) };
}

async function decide(config: EsetsConfig, message: CapturedMessage, run: PolicyRun, dotAt: number, pluginAv?: AvOutcome): Promise<Verdicts> {
  const scanning = scanningSignal(config, run, dotAt);
  try {
    return await scanMessage(config, message, run, scanning.signal, scanning.deadline, pluginAv);
  } finally {
    scanning.done();
  }
}

async function scanMessage(
  config: EsetsConfig, message: CapturedMessage, run: PolicyRun, signal: AbortSignal, deadline: number, pluginAv?: AvOutcome,
): Promise<Verdicts> {
  const avStarted = Date.now();
  // haraka-plugin-clamd's verdict counts only where the message's configuration says scan
  const av = config.action_av !== 'scan' ? undefined : pluginAv ?? await scanForViruses(message, {
    clamd: clamdOptions(config, run.onVerdict),
    maxSize: config.av_scan_obj_max_size,
    cleanMode: config.av_clean_mode,
    cleanMaxParts: config.av_clean_max_parts,
    product: PRODUCT,
    signal,
  }, run.live);
  if (av && !pluginAv) relayMetrics.scan('clamd', (Date.now() - avStarted) / 1000);
  const avDecision = decideAv(config, av);
  if (avDecision.action !== 'accept') return { av, spamTests: [], decision: avDecision };

  let as: AsOutcome | undefined;
  let spamTests: string[] = [];
  if (config.action_as === 'scan') {
    const asStarted = Date.now();
    const result = await scanForSpam(message, {
      spamd: { address: config.spamd_addr, timeoutMs: Math.min(messageBudget(config).spamdMs, deadline - Date.now()) },
      maxSize: config.spamd_max_size,
    });
    relayMetrics.scan('spamd', (Date.now() - asStarted) / 1000);
    as = result.outcome;
    spamTests = result.tests;
  }
  return { av, as, spamTests, decision: decidePolicy(config, av, as) };
}

function finish(
  plugin: Plugin, connection: Connection, txn: Transaction, run: PolicyRun, config: EsetsConfig, message: CapturedMessage,
  verdicts: Verdicts, scanMs: number, next: Next,
): void {
  const { decision } = verdicts;
  const avVerdict = describeAv(verdicts.av, config);
  const asVerdict = decision.option.startsWith('action_as') ? describeAs(verdicts.as, config) : '';
  const verdict = decision.option.startsWith('action_as') ? asVerdict : avVerdict;

  txn.results.add(plugin, { msg: `${decision.action} by ${decision.option}`, av: avVerdict, as: asVerdict || undefined });
  stageSummary(plugin, connection, txn, run, {
    config, action: decision.action, option: decision.option, av: avVerdict, as: asVerdict, size: message.size, scanMs,
  });
  if (connection.remote.closed) return;

  if (decision.action === 'accept') {
    setHeaders(txn, config, verdicts, avVerdict);
    return next();
  }
  respond(next, txn, decision.action, verdict);
}

interface Summary {
  config: EsetsConfig;
  action: string;
  option: string;
  av?: string;
  as?: string;
  /** why the message was refused before any scan */
  verdict?: string;
  size: number;
  /** the policy's own time (scanning) */
  scanMs: number;
}

/** The summary waits for the client's answer; if the client already left, it is written now. */
function stageSummary(plugin: Plugin, connection: Connection, txn: Transaction, run: PolicyRun, s: Summary): void {
  if (run.reset) return writeSummaryWhenSent(plugin, connection, txn, run, s);
  run.summarized = true;
  txn.notes.set(SUMMARY_NOTE, s);
}

/**
 * The first line of the client's answer to its message: Haraka's last reply,
 * unless that is still the 354 to DATA ('none': the client left first).
 */
function clientAnswer(connection: Connection): string {
  const last = connection.last_response;
  if (!last || last.startsWith('354')) return 'none';
  return last.split('\r\n')[0].replace(/^(\d{3})-/, '$1 ');
}

function logSummary(plugin: Plugin, connection: Connection, txn: Transaction, s: Summary): void {
  const server = txn.notes.get(SERVER_OUTCOME) as ServerOutcome | undefined;
  const told = clientAnswer(connection);
  relayMetrics.message(s.action, s.option);
  // a client told 2xx about a message the server took (or the policy discarded) is the quiet case
  const delivered = /^2/.test(told) && (server === 'accepted' || s.action === 'discard');
  // word(): ours, written bare; every string (client, config, scanner, server) is quoted and escaped by lib/syslog
  writeLog(plugin, connection, s.config, summaryLine(delivered, [
    ['action', word(s.action)],
    ['by', word(s.option)],
    ['from', txn.mail_from.format()],
    ['to', txn.rcpt_to[0]?.format() ?? '<>'],
    ['section', sectionName((txn.notes.get(MESSAGE_CONFIG) as MessageConfig | undefined)?.section)],
    ['rcpts', txn.rcpt_to.length],
    ['av', s.av],
    ['as', s.as || undefined],
    ['reason', s.verdict],
    // the first Message-ID, when a message has several
    ['message_id', txn.header.get('Message-ID').split('\n')[0].trim() || word('-')],
    ['size', s.size],
    // what the mail server did (absent: not forwarded), and what the client was told
    ['server', server === undefined ? undefined : word(server)],
    ['reply', told === 'none' ? word('none') : told],
    ['scan', word(`${s.scanMs}ms`)],
    ['time', word(`${Math.max(0, Date.now() - finalDotAt(txn))}ms`)],
  ]));
}

/**
 * The accepted message's header: the client's X-Virus-Scanner:/X-Spam-* go,
 * ours come (X-Virus-Scanner: only on scanned messages, as the manual says).
 * As a value for esets_forward, and on Haraka's header for stock queue plugins.
 */
function setHeaders(txn: Transaction, config: EsetsConfig, verdicts: Verdicts, avVerdict: string): void {
  const add: HeaderField[] = [];
  if (config.add_header_xvirus && wasScanned(verdicts.av)) add.push({ name: 'X-Virus-Scanner', value: xVirusScannerValue(PRODUCT, scanner, avVerdict) });
  const as = verdicts.as;
  if (as && as.kind !== 'not_scanned') {
    add.push({ name: 'X-Spam-Status', value: xSpamStatus({ spam: as.kind === 'spam', score: as.score, threshold: as.threshold, tests: verdicts.spamTests }) });
    add.push({ name: 'X-Spam-Score', value: as.score.toFixed(1) });
  }
  const edits: HeaderEdits = { remove: isScannerField, add };
  txn.notes.set(HEADER_EDITS, edits);
  for (const name of ['X-Virus-Scanner', 'X-Spam-Status', 'X-Spam-Score', 'X-Spam-Flag', 'X-Spam-Level']) txn.remove_header(name);
  for (const field of add) txn.add_header(field.name, field.value);
}

/** Before haraka-plugin-clamd's data_post: how many of its tag fields the client's message had. */
export function note_header_count(this: Plugin, next: Next, connection: Connection): void {
  connection.transaction?.notes.set(HEADER_COUNT_NOTE, headerCount(connection.transaction, PLUGIN_VIRUS_HEADER));
  next();
}

function headerCount(txn: Transaction, name: string): number {
  return txn.header.get_all(name).length;
}

/** haraka-plugin-clamd's tag goes if it added one (it does with its rejections off only for skip_list matches). */
function removePluginHeaders(txn: Transaction): void {
  const before = txn.notes.get(HEADER_COUNT_NOTE) as number | undefined;
  if (before === 0 && headerCount(txn, PLUGIN_VIRUS_HEADER) > 0) txn.remove_header(PLUGIN_VIRUS_HEADER);
}

function clamdPluginListed(plugin: Plugin): boolean {
  return pluginList(plugin).some((name) => CLAMD_PLUGIN_NAMES.includes(name));
}

interface ClamdIni {
  main?: { timeout?: number | string; clamd_socket?: string };
  reject?: { virus?: boolean; error?: boolean };
}

/** haraka-plugin-clamd's settings that would keep the policy from deciding, or overrun the timeout budget. */
function checkClamdPlugin(plugin: Plugin, config: EsetsConfig): void {
  const ini = plugin.config.get('clamd.ini', { booleans: ['+reject.virus', '+reject.error'] }) as ClamdIni | undefined;
  for (const d of clamdPluginWarnings({
    rejectVirus: ini?.reject?.virus ?? true,
    rejectError: ini?.reject?.error ?? true,
    timeoutS: Number(ini?.main?.timeout) || 30,
    hookTimeoutS: Number(plugin.config.get('clamd.timeout')) || Number(plugin.config.get('plugin_timeout')) || 30,
  }, messageBudget(config).scanningMs / 1000)) plugin.logwarn(d);
}

export function discard_message(this: Plugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (!txn?.notes.get(DISCARDED)) return next();
  next(constants.ok, replyFor('discard', '').text);
}

function respond(next: Next, txn: Transaction, action: Exclude<VerdictAction, 'accept'>, verdict: string): void {
  const reply = replyFor(action, verdict);
  const text = reply.text.replace(/^\d\.\d{1,3}\.\d{1,3} /, '');
  switch (action) {
    case 'reject': return next(constants.deny, DSN.create(reply.code, text, 7, 1));
    case 'defer': return next(constants.denysoft, DSN.create(reply.code, text, 7, 1));
    case 'discard':
      txn.notes.set(DISCARDED, true);
      return next();
  }
}

let failureReporter: Plugin | undefined;

/** A daemon found failing is said at warning level, once per back-off period (failover is otherwise silent). */
function reportFailingDaemons(plugin: Plugin): void {
  if (!failureReporter) {
    clamdEvents.on('down', (address, reason) => {
      // never throws into the scan that reported it (relayLog does not)
      relayLog(failureReporter!).warning(`clamd ${address} failed (${reason}): other daemons are tried first for ${CLAMD_BACKOFF_MS / 1000} s`);
    });
  }
  failureReporter = plugin;
}

function watchScannerVersion(plugin: Plugin, address: string): void {
  const refresh = (): void => {
    clamdVersion(address, CLAMD_VERSION_MS)
      .then((reply) => {
        scanner = parseClamdVersion(reply) ?? scanner;
      })
      .catch((err: Error) => relayLog(plugin).warning(`clamd VERSION from ${address}: ${err.message}`));
  };
  refresh();
  setInterval(refresh, VERSION_REFRESH_MS).unref();
}
