// One message's state across the plugins, from MAIL to the client's answer:
// the configuration it runs under (its user section), the relay's copy of its
// bytes, the live scan, the policy's verdicts and decision, the header edits,
// what the mail server did, and its summary line (written once). The plugins
// keep it under a single transaction note (plugins/shared/transaction_message);
// nothing here knows Haraka.

import type { CapturedMessage } from '../io/captured_message';
import type { ScanReport } from '../io/clamd_client';
import type { LiveScan } from '../io/live_scan';
import type { EsetsConfig } from '../lib/esets_options';
import type { AsOutcome, AvOutcome, PolicyDecision } from '../lib/policy';
import type { HeaderField } from '../lib/smtp_data';
import type { SmtpReply } from '../lib/smtp_reply';

/** A user section as the logs name it: its header and line in user_config. */
export interface SectionRef {
  name: string;
  line: number;
}

/** `[name]`, or `[smtp]` for the agent section. */
export function sectionName(section: SectionRef | undefined): string {
  return section ? `[${section.name}]` : '[smtp]';
}

/** What the policy changes in an accepted message's header: the fields dropped, and the relay's own added on top. */
export interface HeaderEdits {
  /** is this field (name in lower case) removed? */
  remove(name: string): boolean;
  add: HeaderField[];
}

/**
 * What the mail server did with the message: 'unknown' from the moment it is
 * sent until the server answers (and for good when the answer is lost);
 * 'failed': the link failed before the final dot.
 */
export type ServerOutcome = 'accepted' | 'refused' | 'failed' | 'unknown';

/** The scanners' findings for the message. */
export interface Verdicts {
  av?: AvOutcome;
  as?: AsOutcome;
  /** spamd's test names, for X-Spam-Status */
  spamTests: string[];
}

/** What the summary line says of the policy's part (the rest is read off the transaction when it is written). */
export interface PolicySummary {
  config: EsetsConfig;
  action: string;
  /** the option (or refusal) that decided */
  option: string;
  av?: string;
  as?: string;
  /** why the message was refused before any scan */
  reason?: string;
  size: number;
  /** the policy's own time (scanning) */
  scanMs: number;
  /** the quarantine entry's id, or 'failed' when it could not be stored (docs/quarantine.md) */
  quarantine?: string;
}

export class RelayMessage {
  /** the trace id (plugins/shared/trace_id), for lines written where no connection is at hand (a clamd failing) */
  trace?: string;
  /** the configuration in force: the first accepted recipient's user section over [smtp]; unset until then */
  config?: EsetsConfig;
  /** the matched user section; undefined: the agent section [smtp] */
  section?: SectionRef;
  /** the most the client may send, bytes (lib/message_size; 0 or unset: no limit), set at MAIL */
  sizeLimit?: number;
  /** the relay's copy of the message (from the DATA command on) */
  captured?: CapturedMessage;
  /** the message streamed to clamd as it arrives */
  live?: LiveScan;
  /** writes a debug line per clamd answer; unset when debug lines are not written */
  onScanReport?: (report: ScanReport) => void;
  verdicts?: Verdicts;
  /** the policy's decision: set once the policy ran */
  decision?: PolicyDecision;
  headerEdits?: HeaderEdits;
  /** haraka-plugin-clamd's tag fields the client's message held (counted before that plugin ran) */
  clientTagFields?: number;
  /** what the mail server did; undefined: not sent */
  serverOutcome?: ServerOutcome;
  /** the server's reply to the message (accepted: the client's 250; refused: the summary line's server_reply) */
  serverReply?: SmtpReply;
  /** settles when the server's outcome is known (or lost): set while the message is sent */
  serverAnswered?: Promise<void>;

  private readonly endedController = new AbortController();
  private summaryState: 'open' | 'staged' | 'written' = 'open';
  private stagedSummary?: PolicySummary;

  /** Aborted when the transaction ends (answered, reset, or the client left): scans in flight stop. */
  get ended(): AbortSignal {
    return this.endedController.signal;
  }

  get discarded(): boolean {
    return this.decision?.action === 'discard';
  }

  /**
   * The policy's summary is ready. It is written when the client has its answer
   * (endTransaction); returned here when that already happened (the client left).
   */
  stageSummary(summary: PolicySummary): PolicySummary | undefined {
    if (this.summaryState === 'written') return undefined;
    if (this.endedController.signal.aborted) {
      this.summaryState = 'written';
      return summary;
    }
    this.summaryState = 'staged';
    this.stagedSummary = summary;
    return undefined;
  }

  /**
   * The transaction ended: scans stop, and the summary to write now is
   * returned: the staged one, or (when the policy never ran) `unstaged()`'s,
   * e.g. a message Haraka itself refused at the end of DATA.
   */
  endTransaction(unstaged: () => PolicySummary | undefined): PolicySummary | undefined {
    this.live?.cancel();
    this.endedController.abort('transaction ended');
    this.captured?.destroy();
    if (this.summaryState === 'written') return undefined;
    const summary = this.stagedSummary ?? (this.summaryState === 'open' ? unstaged() : undefined);
    this.stagedSummary = undefined;
    if (summary) this.summaryState = 'written';
    return summary;
  }

  /** While the message is on its way to the server: settles when what the server did is known. */
  get awaitingServer(): Promise<void> | undefined {
    return this.serverOutcome === 'unknown' ? this.serverAnswered : undefined;
  }
}
