// The engine and signature versions X-Virus-Scanner: names, asked of one clamd
// (VERSION) at start and every five minutes: a signature update shows without
// a restart, and no message waits for it.

import { CLAMD_VERSION_MS } from '../lib/timeout_budget';
import { parseClamdVersion, ScannerVersion } from '../lib/virus_scanner_header';
import { clamdVersion } from './clamd_version';

const REFRESH_MS = 5 * 60_000;

export class ScannerVersionWatch {
  /** the last version clamd gave; undefined until it answered once */
  current?: ScannerVersion;

  constructor(private readonly address: string, private readonly onError: (message: string) => void) {}

  start(): this {
    this.refresh();
    setInterval(() => this.refresh(), REFRESH_MS).unref();
    return this;
  }

  private refresh(): void {
    clamdVersion(this.address, CLAMD_VERSION_MS)
      .then((reply) => {
        this.current = parseClamdVersion(reply) ?? this.current;
      })
      .catch((err: Error) => this.onError(`clamd VERSION from ${this.address}: ${err.message}`));
  }
}
