// Concurrent connections, in all and per client address, against the caps of
// esets.cfg (max_connections, max_connections_per_ip; 0: no cap). Haraka has no
// cap of its own (haraka-plugin-limit's needs Redis), and without one a client
// that opens sessions and stays silent holds them all (slowloris).

export type Admission = { admitted: true } | { admitted: false; reason: string };

export class ConnectionCounts {
  private total = 0;
  private readonly byAddress = new Map<string, number>();

  get open(): number {
    return this.total;
  }

  /** Counts the connection in, unless a cap is reached. */
  admit(address: string, maxTotal: number, maxPerAddress: number): Admission {
    const fromAddress = this.byAddress.get(address) ?? 0;
    if (maxTotal > 0 && this.total >= maxTotal) {
      return { admitted: false, reason: `${this.total} connections open (max_connections = ${maxTotal})` };
    }
    if (maxPerAddress > 0 && fromAddress >= maxPerAddress) {
      return { admitted: false, reason: `${fromAddress} connections open from ${address} (max_connections_per_ip = ${maxPerAddress})` };
    }
    this.total++;
    this.byAddress.set(address, fromAddress + 1);
    return { admitted: true };
  }

  release(address: string): void {
    const fromAddress = this.byAddress.get(address) ?? 0;
    if (fromAddress <= 1) this.byAddress.delete(address);
    else this.byAddress.set(address, fromAddress - 1);
    if (this.total > 0) this.total--;
  }
}
