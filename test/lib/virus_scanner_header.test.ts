import assert from 'node:assert/strict';
import { parseClamdVersion, xVirusScannerValue } from '../../src/lib/virus_scanner_header';

describe('X-Virus-Scanner header', () => {
  it("parses clamd's VERSION reply with and without signature information", () => {
    assert.deepEqual(parseClamdVersion('ClamAV 1.0.7/27100/Tue Nov 24 09:25:01 2026\0'), {
      engine: 'ClamAV 1.0.7', signatures: '27100', signatureDate: 'Tue Nov 24 09:25:01 2026',
    });
    assert.deepEqual(parseClamdVersion('ClamAV 1.4.6'), { engine: 'ClamAV 1.4.6', signatures: undefined, signatureDate: undefined });
    assert.equal(parseClamdVersion('UNKNOWN COMMAND'), undefined);
  });

  it('names product, engine, signatures and verdict', () => {
    const v = xVirusScannerValue('esets-relay 0.1.0', parseClamdVersion('ClamAV 1.0.7/27100/Tue Nov 24 09:25:01 2026'), 'clean');
    assert.equal(v, 'esets-relay 0.1.0 (ClamAV 1.0.7, signatures 27100 of Tue Nov 24 09:25:01 2026); clean');
  });

  it('says when the engine version is unknown and never contains line breaks', () => {
    const v = xVirusScannerValue('p 1', undefined, 'not scanned: x\r\nInjected: yes');
    assert.equal(v, 'p 1 (ClamAV (version unknown)); not scanned: x Injected: yes');
  });
});
