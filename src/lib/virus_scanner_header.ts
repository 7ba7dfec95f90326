// The X-Virus-Scanner: header: who scanned, with which signatures, and the verdict.

export interface ScannerVersion {
  engine: string;
  signatures?: string;
  signatureDate?: string;
}

/** clamd's VERSION reply, e.g. "ClamAV 1.0.7/27100/Tue Nov 24 09:25:01 2026". */
export function parseClamdVersion(reply: string): ScannerVersion | undefined {
  const parts = reply.replace(/\0/g, '').trim().split('/');
  if (!/^ClamAV \S+$/.test(parts[0] ?? '')) return undefined;
  return { engine: parts[0], signatures: parts[1], signatureDate: parts[2] };
}

export function xVirusScannerValue(product: string, scanner: ScannerVersion | undefined, verdict: string): string {
  let engine = 'ClamAV (version unknown)';
  if (scanner) {
    engine = scanner.engine;
    if (scanner.signatures) engine += `, signatures ${scanner.signatures}`;
    if (scanner.signatureDate) engine += ` of ${scanner.signatureDate}`;
  }
  return `${product} (${engine}); ${verdict}`.replace(/[\x00-\x1f\x7f]+/g, ' ');
}
