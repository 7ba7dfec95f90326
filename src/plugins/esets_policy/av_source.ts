// Who gives the policy its AV verdict: the relay's own clamd client (the
// default: the message streamed to clamd as it arrives, then cleaning), or
// haraka-plugin-clamd when config/plugins lists it (its transaction.results
// read). One interface, so the policy does not care which.

import type { CapturedMessage } from '../../io/captured_message';
import { ClamdOptions } from '../../io/clamd_client';
import { attachLiveScan, LiveScan } from '../../io/live_scan';
import { relayMetrics } from '../../io/relay_metrics';
import { MimeScanResult, scanMimeLeaves } from '../../io/mime_scan';
import { scanForViruses, withParts } from '../../io/virus_scan';
import { ClamdPluginResults, pluginCopyDiffers, verdictFromClamdPlugin } from '../../lib/clamd_plugin_verdict';
import type { EsetsConfig } from '../../lib/esets_options';
import type { ScanLimits } from '../../io/part_scans';
import type { AvOutcome } from '../../lib/policy';
import { CLAMD_CONNECT_MS, messageBudget } from '../../lib/timeout_budget';
import type { RelayMessage } from '../../session/relay_message';
import type { Transaction } from '../shared/haraka';

export interface AvSource {
  /** At DATA, for a message whose configuration says scan: the message is on its way. */
  begin(message: RelayMessage, captured: CapturedMessage, config: EsetsConfig): void;
  /** At the final dot: why this source would scan other bytes than the readers will read, if it would. */
  unreadable(captured: CapturedMessage): string | undefined;
  /** The AV stage's outcome, for a message whose configuration says scan. */
  scan(message: RelayMessage, captured: CapturedMessage, config: EsetsConfig, txn: Transaction, signal: AbortSignal): Promise<AvOutcome>;
  /** At the final dot, whatever the configuration: undo what the source changed in Haraka's copy of the message. */
  tidy(message: RelayMessage, txn: Transaction): void;
}

function clamdOptions(config: EsetsConfig, message: RelayMessage): ClamdOptions {
  return {
    addresses: config.daemon_sock_path, connectTimeoutMs: CLAMD_CONNECT_MS, scanTimeoutMs: messageBudget(config).clamdScanMs,
    onVerdict: message.onScanReport, trace: message.trace,
  };
}

/** The relay's own clamd client. */
export class RelayClamd implements AvSource {
  /**
   * `product`: the name the removal notice of a cleaned part gives; `limits`: the MIME walk's bounds
   * (the clamd in force's MaxRecursion and MaxFiles)
   */
  constructor(private readonly product: string, private readonly limits: () => ScanLimits) {}

  begin(message: RelayMessage, captured: CapturedMessage, config: EsetsConfig): void {
    message.live = new LiveScan(clamdOptions(config, message), config.av_scan_obj_max_size);
    attachLiveScan(captured, message.live);
  }

  unreadable(): undefined {
    return undefined;
  }

  async scan(
    message: RelayMessage, captured: CapturedMessage, config: EsetsConfig, _txn: Transaction, signal: AbortSignal,
  ): Promise<AvOutcome> {
    const started = Date.now();
    const outcome = await scanForViruses(captured, {
      clamd: clamdOptions(config, message),
      maxSize: config.av_scan_obj_max_size,
      cleanMode: config.av_clean_mode,
      cleanMaxParts: config.av_clean_max_parts,
      product: this.product,
      limits: this.limits(),
      banned: config.av_banned_types,
      signal,
    }, message.live);
    relayMetrics.scan('clamd', (Date.now() - started) / 1000);
    return outcome;
  }

  tidy(): void {
    // nothing of Haraka's copy changed
  }
}

/** haraka-plugin-clamd's tag; removed when it added one (the message stays as the client sent it) */
const PLUGIN_VIRUS_HEADER = 'X-Haraka-Virus';

/**
 * haraka-plugin-clamd's results, read as the AV verdict (lib/clamd_plugin_verdict),
 * with the relay's own walk of the MIME structure beside them (each part
 * scanned by the plugin's clamd), as with the relay's own client.
 */
export class ClamdPluginResultsSource implements AvSource {
  /**
   * `harakaHeaderLines`: connection.ini [headers] max_lines, the header lines Haraka keeps in its copy;
   * `clamd`: the plugin's clamd_socket addresses; `limits`: the MIME walk's bounds
   */
  constructor(
    private readonly harakaHeaderLines: number, private readonly clamd: string[], private readonly limits: () => ScanLimits,
  ) {}

  begin(): void {
    // the plugin reads Haraka's copy of the message itself
  }

  /** Before the plugin's data_post: how many of its tag fields the client's message had. */
  countClientTags(message: RelayMessage, txn: Transaction): void {
    message.clientTagFields = txn.header.get_all(PLUGIN_VIRUS_HEADER).length;
  }

  unreadable(captured: CapturedMessage): string | undefined {
    return pluginCopyDiffers(captured, this.harakaHeaderLines);
  }

  async scan(
    message: RelayMessage, captured: CapturedMessage, config: EsetsConfig, txn: Transaction, signal: AbortSignal,
  ): Promise<AvOutcome> {
    const whole = verdictFromClamdPlugin(txn.results.get('clamd') as ClamdPluginResults | undefined);
    // only a message the plugin called clean is walked: its virus, its limits (max_size), a clamd it found
    // down and the operator's own exclusions stand as they are
    if (whole.kind !== 'clean') return whole;
    const parts = await scanMimeLeaves(() => captured.readAsSent(), {
      clamd: { ...clamdOptions(config, message), addresses: this.clamd }, limits: this.limits(), banned: config.av_banned_types, signal,
    }).catch((err: Error): MimeScanResult => ({ kind: 'not_scanned', reason: `MIME parts: ${err.message}` }));
    return withParts(whole, parts);
  }

  /** Its tag goes if it added one (it does with its rejections off only for skip_list matches). */
  tidy(message: RelayMessage, txn: Transaction): void {
    if (message.clientTagFields === 0 && txn.header.get_all(PLUGIN_VIRUS_HEADER).length > 0) txn.remove_header(PLUGIN_VIRUS_HEADER);
  }
}
