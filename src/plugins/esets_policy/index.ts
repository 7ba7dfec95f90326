// The Handle Object Policy (esets_smtp(1)) as Haraka hooks: at data_post, the
// AV stage (an AvSource: the relay's clamd client or haraka-plugin-clamd's
// results) then, only if it accepted, the AS stage (spamd); lib/policy decides.
// Accepted mail gets X-Virus-Scanner: (and X-Spam-* when spam-scanned); every
// message gets one summary line (summary.ts). What it finds goes on the
// message's own object (session/relay_message).

import cluster from 'node:cluster';
import constants from 'haraka-constants';
import type { CapturedMessage } from '../../io/captured_message';
import { clamdEvents } from '../../io/clamd_client';
import { ScannerVersionWatch } from '../../io/scanner_version';
import { scanForSpam } from '../../io/spam_scan';
import { ClamdPluginResultsSource, AvSource, RelayClamd } from './av_source';
import { clamdPluginWarnings, HEADERLESS_IN_HARAKAS_COPY } from '../../lib/clamd_plugin_verdict';
import type { EsetsConfig } from '../../lib/esets_options';
import { CLAMD_PLUGIN_NAMES } from '../../lib/haraka_c_rules';
import {
  decideAv, decideMessage, describeAs, describeAv, PolicyDecision, policyFailed, quarantineFailed, refuseCaptureFailure, refuseUnreadable,
  wasScanned,
} from '../../lib/policy';
import { enhancedCode, relayReply } from '../../lib/relay_replies';
import { relayMetrics } from '../../io/relay_metrics';
import { HeaderField, isScannerField } from '../../lib/smtp_data';
import { xSpamStatus } from '../../lib/spamd_reply';
import { errorLine, word } from '../../lib/syslog';
import { CLAMD_BACKOFF_MS, HOOK_TIMEOUT_S, messageBudget, stopTiming } from '../../lib/timeout_budget';
import { xVirusScannerValue } from '../../lib/virus_scanner_header';
import type { RelayMessage, Verdicts } from '../../session/relay_message';
import { finalDotAt, removeHeaderFields } from '../shared/haraka';
import type { Connection, Next, Plugin, Transaction } from '../shared/haraka';
import { listsPlugin, pluginList } from '../shared/haraka_c_checks';
import { DATA_POST_PRIORITY, QUEUE_PRIORITY } from '../shared/hook_order';
import { holdClientTimeout, relayWaits, releaseClientTimeout } from '../shared/client_timeout';
import { relayConfig } from '../shared/relay_config';
import { relayLog, writeLog } from '../shared/relay_log';
import { useStopSignals } from '../shared/stop_signals';
import { captureMessage, finishedMessage, messageOf } from '../shared/transaction_message';
import { checkClamdConf } from './clamd_conf_check';
import { clamdConfFile } from '../shared/clamd_conf_file';
import { clamdScanLimitsOf } from '../../io/clamd_limits';
import { missingUnpackTools } from '../../io/unpack_tools';
import type { ScanLimits } from '../../io/part_scans';
import { stageSummary, summarizeCut, summarizeEnded } from './summary';
import { keepInQuarantine, runQuarantineExpiry } from './quarantine';
import { quarantineVerdict } from '../../lib/quarantine';
import { messageEnded, messageStarted, watchWorkersInProgress } from '../../io/in_progress';
import { launcherLogHook } from '../shared/launcher_log';
import { traceId } from '../shared/trace_id';
import { underLauncher } from '../../io/config_files';
import { useShortName } from '../shared/plugin_name';
import { exactReply } from '../shared/exact_reply';
import { queuedReply } from '../shared/own_replies';
import { relayAnswer } from '../shared/relay_answer';

const PRODUCT = `esets-relay ${require('../../../../package.json').version as string}`;

/** The plugin's state, on the plugin object (Haraka calls every hook with it as `this`). */
interface PolicyPlugin extends Plugin {
  avSource: AvSource;
  /** esets_forward sends the relay's copy of the message (else a stock queue plugin sends Haraka's) */
  forwardsCapture: boolean;
  scannerVersion: ScannerVersionWatch;
}

export function register(this: PolicyPlugin): void {
  useShortName(this);
  const { config } = relayConfig(this);
  // Haraka's hook timeout above every wait of ours (lib/timeout_budget): ours answer first, with the policy's reply
  this.timeout = HOOK_TIMEOUT_S;
  useStopSignals(this, stopTiming(config));
  const clamdPlugin = pluginList(this).some((name) => CLAMD_PLUGIN_NAMES.includes(name));
  // the MIME walk keeps the limits of the clamd in force (read again when its clamd.conf changes)
  const walkLimits = (): ScanLimits => {
    const limits = clamdScanLimitsOf(clamdConfFile(this));
    return {
      maxDepth: limits.maxRecursion, maxLeaves: limits.maxFiles, batchSmallParts: limits.scanArchive,
      maxFileSize: limits.maxFileSize, maxScanSize: limits.maxScanSize,
    };
  };
  this.forwardsCapture = listsPlugin(this, 'esets_forward');
  if (clamdPlugin) {
    checkClamdPlugin(this, config);
    const ini = this.config.get('connection.ini') as { headers?: { max_lines?: number | string } } | undefined;
    this.avSource = new ClamdPluginResultsSource(Number(ini?.headers?.max_lines) || 1000, clamdPluginSockets(this), walkLimits);
    this.register_hook('data_post', 'count_client_tags', DATA_POST_PRIORITY.beforeScanners);
  } else {
    this.avSource = new RelayClamd(PRODUCT, walkLimits);
  }
  this.register_hook('data', 'start_live_scan');
  this.register_hook('data_post', 'hold_client_timeout', DATA_POST_PRIORITY.beforeScanners);
  this.register_hook('data_post', 'apply_policy', DATA_POST_PRIORITY.policy);
  this.register_hook('reset_transaction', 'end_transaction');
  // the launcher's log hook: Haraka's per-session notices at INFO, JSON kept JSON (under haraka -c: Haraka's own)
  if (underLauncher()) this.register_hook('log', 'launcher_log');
  // before esets_forward: a discarded message is answered 250 and not forwarded
  this.register_hook('queue', 'discard_message', QUEUE_PRIORITY.answered);
  this.register_hook('queue_outbound', 'discard_message', QUEUE_PRIORITY.answered);
  // X-Virus-Scanner: names the engine that scans: ours (daemon_sock_path), or haraka-plugin-clamd's first clamd_socket
  const versionFrom = clamdPlugin ? clamdPluginSocket(this) : config.daemon_sock_path[0];
  this.scannerVersion = new ScannerVersionWatch(versionFrom, (text) => relayLog(this).warning(text)).start();
  if (!clamdPlugin) checkClamdConf(this);
  reportMissingTools(this);
  reportFailingDaemons(this);
  runQuarantineExpiry(this);
  // the manager: what a worker that dies had in progress (launcher, and haraka -c with nodes)
  if (cluster.isPrimary) watchWorkersInProgress((pid, how, messages) => summarizeCut(this, pid, how, messages));
}

export const launcher_log = launcherLogHook;

/** At start (the manager): a program that opens containers is missing, so every container would be "not scanned". */
function reportMissingTools(plugin: PolicyPlugin): void {
  if (cluster.isWorker) return;
  const missing = missingUnpackTools();
  if (!missing.length) return;
  relayLog(plugin).warning(`not found on PATH: ${missing.map((t) => `${t.program} (Debian package ${t.pkg})`).join(', ')}; `
    + 'archives, compressed files and PDFs in mail are "not scanned" (action_av_notscanned) until it is installed');
}

/** The message's own configuration (its user section), else the agent section. */
function configOf(plugin: Plugin, message: RelayMessage): EsetsConfig {
  return message.config ?? relayConfig(plugin).config;
}

/** At DATA: the relay's copy of the message, and the live scan: the message goes to clamd as it arrives (io/live_scan). */
export function start_live_scan(this: PolicyPlugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (!txn) return next();
  const captured = captureMessage(txn);
  const message = messageOf(txn);
  message.trace = traceId(connection, txn);
  // the manager's account of it (a worker killed now: the manager logs it as cut)
  messageStarted({ trace: message.trace, client: connection.remote.ip, from: txn.mail_from.format() });
  const config = configOf(this, message);
  if (config.action_av === 'scan') {
    message.onScanReport = scanReporter(this, connection, txn, config);
    this.avSource.begin(message, captured, config);
  }
  next();
}

/** Which clamd answered for the message, what and how fast: only when debug lines are written (else nothing per scan). */
function scanReporter(plugin: Plugin, connection: Connection, txn: Transaction, config: EsetsConfig): RelayMessage['onScanReport'] {
  const log = relayLog(plugin, connection, config);
  if (!log.wants('debug')) return undefined;
  return (r) => log.debug(() => [
    ['event', word('clamd_scan')], ['session', word(txn.uuid)], ['daemon', r.address], ['live', word(r.live ? 'yes' : 'no')],
    ['verdict', describeAv(r.verdict, config)], ['time', word(`${r.ms}ms`)],
  ]);
}

/** Before haraka-plugin-clamd's data_post: how many of its tag fields the client's message had. */
export function count_client_tags(this: PolicyPlugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (txn && this.avSource instanceof ClamdPluginResultsSource) this.avSource.countClientTags(messageOf(txn), txn);
  next();
}

/** The final dot: the client now waits for the relay's answer (client_timeout holdClientTimeout). */
export function hold_client_timeout(this: PolicyPlugin, next: Next, connection: Connection): void {
  holdClientTimeout(connection);
  next();
}

/** The transaction ended (answered, reset, or the client left): scans in flight stop, and its summary is written. */
export function end_transaction(this: PolicyPlugin, next: Next, connection: Connection): void {
  releaseClientTimeout(connection);
  const txn = connection.transaction;
  if (txn) {
    summarizeEnded(this, connection, txn, messageOf(txn));
    messageEnded(traceId(connection, txn));
  }
  next();
}

export function apply_policy(this: PolicyPlugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  if (!txn) return next();
  const message = messageOf(txn);
  const config = configOf(this, message);
  const started = Date.now();
  const captured = finishedMessage(txn);
  if (!captured) {
    writeLog(this, connection, config, errorLine('policy failed: no captured message'));
    return answer(this, connection, txn, message, {
      config, decision: policyFailed('no captured message'), size: txn.data_bytes, scanMs: 0,
    }, next);
  }
  if (captured.failure) {
    // not kept (over the size limit, or the spool failed): answered without a scan, never sent
    message.live?.cancel();
    this.avSource.tidy(message, txn);
    const decision = refuseCaptureFailure(captured.failure);
    const failure = captured.failure;
    if (failure.kind === 'spool_error') writeLog(this, connection, config, errorLine(`message not kept: ${failure.reason}`));
    return answer(this, connection, txn, message, { config, decision, size: captured.size, scanMs: 0 }, next);
  }
  const unreadable = captured.malformed
    ?? (config.action_av === 'scan' ? this.avSource.unreadable(captured) : undefined)
    // without esets_forward a stock queue plugin sends Haraka's copy, split otherwise than the readers read it
    ?? (captured.headerless && !this.forwardsCapture ? HEADERLESS_IN_HARAKAS_COPY : undefined);
  this.avSource.tidy(message, txn);
  if (unreadable) {
    // never passed on and never normalised: servers read such messages differently (docs/security.md)
    message.live?.cancel();
    return answer(this, connection, txn, message, { config, decision: refuseUnreadable(unreadable), size: captured.size, scanMs: 0 }, next);
  }
  relayWaits(connection, () => decide(this, config, message, captured, txn))
    .then((verdicts) => {
      message.verdicts = verdicts;
      const decision = decideMessage(config, verdicts.av, verdicts.as);
      answer(this, connection, txn, message, { config, decision, verdicts, size: captured.size, scanMs: Date.now() - started }, next);
    })
    .catch((err: Error) => {
      writeLog(this, connection, config, errorLine(`policy failed: ${err.stack ?? err.message}`));
      answer(this, connection, txn, message, {
        config, decision: policyFailed(err.message), size: captured.size, scanMs: Date.now() - started,
      }, next);
    });
}

/**
 * Scanning as a whole ends at the budget's bound after the final dot (the mail
 * server keeps the rest of timeout_message), or when the transaction ends;
 * a scan still running then counts as not scanned.
 */
function scanningSignal(
  config: EsetsConfig, message: RelayMessage, dotAt: number,
): { signal: AbortSignal; deadline: number; done(): void } {
  const { scanningMs } = messageBudget(config);
  const deadline = dotAt + scanningMs;
  const timeUp = new AbortController();
  const reason = `scanning took longer than the ${scanningMs / 1000} s timeout_message leaves it`;
  const timer = setTimeout(() => timeUp.abort(reason), Math.max(0, deadline - Date.now()));
  return { signal: AbortSignal.any([message.ended, timeUp.signal]), deadline, done: () => clearTimeout(timer) };
}

/** The AV stage, then (only if its decision is accept) the AS stage: each decided once, by lib/policy. */
async function decide(
  plugin: PolicyPlugin, config: EsetsConfig, message: RelayMessage, captured: CapturedMessage, txn: Transaction,
): Promise<Verdicts> {
  const scanning = scanningSignal(config, message, finalDotAt(txn));
  try {
    const av = config.action_av === 'scan' ? await plugin.avSource.scan(message, captured, config, txn, scanning.signal) : undefined;
    if (decideAv(config, av).action !== 'accept' || config.action_as !== 'scan') return { av, spamTests: [] };
    const started = Date.now();
    const result = await scanForSpam(captured, {
      spamd: { address: config.spamd_addr, timeoutMs: Math.min(messageBudget(config).spamdMs, scanning.deadline - Date.now()) },
      maxSize: config.spamd_max_size,
    });
    relayMetrics.scan('spamd', (Date.now() - started) / 1000);
    return { av, as: result.outcome, spamTests: result.tests };
  } finally {
    scanning.done();
  }
}

interface Outcome {
  config: EsetsConfig;
  decision: PolicyDecision;
  verdicts?: Verdicts;
  size: number;
  scanMs: number;
  /** the quarantine entry's id, or 'failed' (docs/quarantine.md) */
  quarantine?: string;
}

/**
 * The policy's decision, once the quarantine has what it keeps (quarantine.ts):
 * stored before the client hears anything, or the answer becomes a defer (the
 * client keeps the message).
 */
function answer(plugin: PolicyPlugin, connection: Connection, txn: Transaction, message: RelayMessage, o: Outcome, next: Next): void {
  const kept = quarantineVerdict(o.config, o.decision, o.verdicts?.av);
  const captured = kept && !connection.remote.closed ? finishedMessage(txn) : undefined;
  if (!kept || !captured) return tell(plugin, connection, txn, message, o, next);
  relayWaits(connection, () => keepInQuarantine(plugin, connection, txn, message, captured, kept, o.decision, o.config)).then(
    (entry) => tell(plugin, connection, txn, message, { ...o, quarantine: entry.id }, next),
    (err: Error) => {
      const instead = o.decision.action === 'accept' ? 'sending the cleaned copy' : o.decision.action;
      relayMetrics.quarantineFailure();
      writeLog(plugin, connection, o.config, errorLine(`quarantine: message not stored (${err.message}): deferred instead of ${instead}`));
      tell(plugin, connection, txn, message, { ...o, decision: quarantineFailed(o.decision), quarantine: 'failed' }, next);
    },
  );
}

/** The policy's decision: results, the summary staged, and the client's answer (accept: on to the mail server). */
function tell(plugin: PolicyPlugin, connection: Connection, txn: Transaction, message: RelayMessage, o: Outcome, next: Next): void {
  const { config, decision, verdicts } = o;
  message.decision = decision;
  const scanned = verdicts !== undefined;
  const av = scanned ? describeAv(verdicts.av, config) : undefined;
  const as = scanned && decision.option.startsWith('action_as') ? describeAs(verdicts.as, config) : undefined;
  if (scanned) txn.results.add(plugin, { msg: `${decision.action} by ${decision.option}`, av, as });
  stageSummary(plugin, connection, txn, message, {
    config, action: decision.action, option: decision.option, av, as, reason: scanned ? undefined : decision.verdict,
    size: o.size, scanMs: o.scanMs, quarantine: o.quarantine,
  });
  if (connection.remote.closed) return;
  if (decision.action === 'accept') {
    setHeaders(plugin, txn, message, config, verdicts ?? { spamTests: [] });
    return next();
  }
  // discard: 250 at queue time (discard_message), and never forwarded
  if (decision.action === 'discard') return next();
  const reject = decision.action === 'reject';
  const reply = decision.reply ?? { kind: reject ? 'reject_by_policy' : 'defer_by_policy' };
  next(reject ? constants.deny : constants.denysoft, relayAnswer(connection, reply, txn));
}

/**
 * The accepted message's header: the client's X-Virus-Scanner:/X-Spam-* go,
 * ours come (X-Virus-Scanner: only on scanned messages, as the manual says).
 * As edits esets_forward applies to the relay's copy, and the same edits on
 * Haraka's header for stock queue plugins (queue/smtp_forward).
 */
function setHeaders(plugin: PolicyPlugin, txn: Transaction, message: RelayMessage, config: EsetsConfig, verdicts: Verdicts): void {
  const add: HeaderField[] = [];
  if (config.add_header_xvirus && wasScanned(verdicts.av)) {
    add.push({
      name: 'X-Virus-Scanner', value: xVirusScannerValue(PRODUCT, plugin.scannerVersion.current, describeAv(verdicts.av, config)),
    });
  }
  const as = verdicts.as;
  if (as && as.kind !== 'not_scanned') {
    add.push({
      name: 'X-Spam-Status',
      value: xSpamStatus({ spam: as.kind === 'spam', score: as.score, threshold: as.threshold, tests: verdicts.spamTests }),
    });
    add.push({ name: 'X-Spam-Score', value: as.score.toFixed(1) });
  }
  message.headerEdits = { remove: isScannerField, add };
  removeHeaderFields(txn, isScannerField);
  for (const field of add) txn.add_header(field.name, field.value);
}

interface ClamdIni {
  main?: { timeout?: number | string; clamd_socket?: string };
  reject?: { virus?: boolean; error?: boolean };
}

/** haraka-plugin-clamd's clamd_socket addresses, in its order. */
function clamdPluginSockets(plugin: Plugin): string[] {
  const ini = plugin.config.get('clamd.ini') as ClamdIni | undefined;
  const all = String(ini?.main?.clamd_socket ?? 'localhost:3310').split(/[,; ]+/).filter(Boolean);
  return all.length ? all : ['localhost:3310'];
}

function clamdPluginSocket(plugin: Plugin): string {
  return clamdPluginSockets(plugin)[0];
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

export function discard_message(this: PolicyPlugin, next: Next, connection: Connection): void {
  const txn = connection.transaction;
  const decision = txn ? messageOf(txn).decision : undefined;
  if (!txn || decision?.action !== 'discard') return next();
  const reply = relayReply({ kind: 'discarded' }, traceId(connection, txn));
  // sent exactly where esets_forward's own_replies runs; elsewhere Haraka appends its own "(ID)" to the text
  queuedReply(txn, exactReply({ code: reply.code, lines: [reply.line] }));
  next(constants.ok, `${enhancedCode(reply.enhanced)} ${reply.text}`);
}

let failureReporter: Plugin | undefined;

/** A daemon found failing is said at warning level, once per back-off period (failover is otherwise silent). */
function reportFailingDaemons(plugin: Plugin): void {
  if (!failureReporter) {
    clamdEvents.on('down', (address, reason, trace) => {
      // never throws into the scan that reported it (relayLog does not); the message it failed: in Haraka's
      // brackets and in the text (syslog has no brackets)
      relayLog(failureReporter!, trace ? { uuid: trace } : undefined).warning(`clamd ${address} failed (${reason})`
        + `${trace ? ` scanning trace=${trace}` : ''}: other daemons are tried first for ${CLAMD_BACKOFF_MS / 1000} s`);
    });
  }
  failureReporter = plugin;
}
