// timeout_client is the client's silence (Haraka: the socket's inactivity
// timeout). While the relay itself waits, on the mail server or a scanner, the
// client is silent because it waits for the relay: that time is not counted,
// or a client could be told "421 timeout" about a message the server then
// takes (a duplicate when it sends it again). One object per connection owns
// the count of waits and the timeout to restore.
//
// It also owns the client's deadlines beyond its silence (client_min_rate per
// request, timeout_session, input stuck for timeout_client: lib/client_deadline),
// counted in the same client time: only while no wait of the relay's runs.

import { ClientDeadlines, ClientTime, msUntilOverdue, Overdue, overdue, overdueByMs } from '../lib/client_deadline';

/** The client's socket as far as its inactivity timeout goes. */
export interface TimedSocket {
  timeout?: number;
  setTimeout(ms: number): unknown;
}

export class ClientTimer {
  /** waits in progress (the relay's own, and the hold from the final dot to the answer) */
  private waits = 0;
  /** the timeout to set again when the last wait ends, ms */
  private timeoutMs = 0;
  /** the final dot came and the client has no answer yet */
  private held = false;

  private deadlines: ClientDeadlines = { timeoutClientS: 0, minRate: 0, sessionS: 0 };
  /** where the connection acts on a passed deadline; none until configured */
  private enforcer?: { canCut: (o: Overdue, pastMs: number) => boolean; cut: (o: Overdue) => void };
  private spent: ClientTime = { sessionMs: 0, requestMs: 0, requestBytes: 0, stalledMs: 0 };
  /** when `spent` was last brought up to date */
  private mark = Date.now();
  private stalled = false;
  private check?: NodeJS.Timeout;
  private done = false;

  constructor(private readonly socket: TimedSocket, private readonly closed: () => boolean) {}

  /**
   * client_min_rate and timeout_session (timeout_client comes from set()); `cut` is
   * called once a bound is passed, when `canCut` (given the bound and how far past it the client is, ms)
   * says the client is not waiting for a reply.
   */
  enforce(minRate: number, sessionS: number, canCut: (o: Overdue, pastMs: number) => boolean, cut: (o: Overdue) => void): void {
    this.deadlines = { ...this.deadlines, minRate, sessionS };
    this.enforcer = { canCut, cut };
    this.schedule();
  }

  /** Bytes from the client: they extend the current request's deadline. */
  received(bytes: number): void {
    this.settle();
    this.spent.requestBytes += bytes;
    this.schedule();
  }

  /** A request is complete (a command line taken, or a message's final dot): the next one starts. */
  progress(): void {
    this.settle();
    this.spent.requestMs = 0;
    this.spent.requestBytes = 0;
    this.spent.stalledMs = 0;
    this.schedule();
  }

  /** The client's input is stuck (not read by the relay, or its replies not read by it), or moves again. */
  stall(on: boolean): void {
    if (on === this.stalled) return;
    this.settle();
    this.stalled = on;
    this.schedule();
  }

  /** The connection is gone: no more checks. */
  stop(): void {
    this.done = true;
    if (this.check) clearTimeout(this.check);
    this.check = undefined;
  }

  /** The client's time so far (for tests and logs). */
  time(): ClientTime {
    this.settle();
    return { ...this.spent };
  }

  /** Brings the client's time up to now: it runs only while the relay does not wait. */
  private settle(): void {
    const now = Date.now();
    if (this.waits === 0) {
      const dt = now - this.mark;
      this.spent.sessionMs += dt;
      this.spent.requestMs += dt;
      if (this.stalled) this.spent.stalledMs += dt;
    }
    this.mark = now;
  }

  /** One timer, set to the nearest deadline of the client's time; none while the relay waits. */
  private schedule(): void {
    if (this.check) clearTimeout(this.check);
    this.check = undefined;
    if (!this.enforcer || this.done || this.waits > 0 || this.closed()) return;
    const ms = msUntilOverdue(this.deadlines, this.spent, this.stalled);
    if (!Number.isFinite(ms)) return;
    this.check = setTimeout(() => this.onCheck(), ms + 20);
    this.check.unref();
  }

  private onCheck(): void {
    this.check = undefined;
    if (!this.enforcer || this.done || this.closed()) return;
    this.settle();
    const passed = overdue(this.deadlines, this.spent);
    if (!passed) return this.schedule();
    if (!this.enforcer.canCut(passed, overdueByMs(this.deadlines, this.spent, passed))) {
      // the client waits for a reply of ours: look again soon
      this.check = setTimeout(() => this.onCheck(), 500);
      this.check.unref();
      return;
    }
    this.stop();
    this.enforcer.cut(passed);
  }

  /** Runs `work` with the client's inactivity timeout off; it is set again (from zero) when the last wait ends. */
  async during<T>(work: () => Promise<T>): Promise<T> {
    this.startWait();
    try {
      return await work();
    } finally {
      this.endWait();
    }
  }

  /** timeout_client for this connection; inside a wait of the relay's it applies when the wait ends. */
  set(seconds: number): void {
    this.deadlines = { ...this.deadlines, timeoutClientS: seconds };
    if (this.waits > 0) this.timeoutMs = seconds * 1000;
    else this.socket.setTimeout(seconds * 1000);
  }

  /**
   * From the final dot until the client has its answer the client waits for the
   * relay, whoever does the work (our plugins, haraka-plugin-clamd, a queue plugin
   * such as queue/smtp_forward waiting on the server): its timeout is off.
   */
  hold(): void {
    if (this.held) return;
    this.held = true;
    this.startWait();
  }

  /** The client has its answer: its silence counts again. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    this.endWait();
  }

  private startWait(): void {
    if (this.waits === 0) this.settle();
    if (this.waits++ === 0) {
      this.schedule();
      this.timeoutMs = this.socket.timeout ?? 0;
      this.socket.setTimeout(0);
    }
  }

  private endWait(): void {
    if (--this.waits === 0) {
      this.mark = Date.now();
      if (!this.closed()) this.socket.setTimeout(this.timeoutMs);
      this.schedule();
    }
  }
}
