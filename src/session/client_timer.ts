// timeout_client is the client's silence (Haraka: the socket's inactivity
// timeout). While the relay itself waits, on the mail server or a scanner, the
// client is silent because it waits for the relay: that time is not counted,
// or a client could be told "421 timeout" about a message the server then
// takes (a duplicate when it sends it again). One object per connection owns
// the count of waits and the timeout to restore.

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

  constructor(private readonly socket: TimedSocket, private readonly closed: () => boolean) {}

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
    if (this.waits++ === 0) {
      this.timeoutMs = this.socket.timeout ?? 0;
      this.socket.setTimeout(0);
    }
  }

  private endWait(): void {
    if (--this.waits === 0 && !this.closed()) this.socket.setTimeout(this.timeoutMs);
  }
}
