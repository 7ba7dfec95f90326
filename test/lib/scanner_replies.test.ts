import assert from 'node:assert/strict';
import { parseClamdReply } from '../../src/lib/clamd_reply';
import { parseSpamdReply, xSpamStatus } from '../../src/lib/spamd_reply';

describe('clamd replies', () => {
  it('reads OK, FOUND and several detections', () => {
    assert.deepEqual(parseClamdReply('stream: OK\0'), { kind: 'clean' });
    assert.deepEqual(parseClamdReply('stream: Eicar-Test-Signature FOUND\0'), { kind: 'infected', names: ['Eicar-Test-Signature'] });
    assert.deepEqual(parseClamdReply('stream: A FOUND\0stream: B FOUND\0'), { kind: 'infected', names: ['A', 'B'] });
  });

  it('makes size limits, errors, encrypted archives and silence "not scanned"', () => {
    assert.equal(parseClamdReply('INSTREAM size limit exceeded. ERROR\0').kind, 'not_scanned');
    assert.deepEqual(
      parseClamdReply("stream: Can't allocate memory ERROR\0"),
      { kind: 'not_scanned', reason: "clamd: Can't allocate memory" },
    );
    assert.deepEqual(
      parseClamdReply('stream: Heuristics.Encrypted.Zip FOUND\0'),
      { kind: 'not_scanned', reason: 'clamd: Heuristics.Encrypted.Zip' },
    );
    assert.equal(parseClamdReply('stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND\0').kind, 'not_scanned');
    assert.equal(parseClamdReply('').kind, 'not_scanned');
  });

  it('reads every line: a real signature beside a limit alert or an error is an infection', () => {
    assert.deepEqual(
      parseClamdReply('stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND\0stream: Eicar-Test-Signature FOUND\0'),
      { kind: 'infected', names: ['Eicar-Test-Signature'] },
    );
    assert.deepEqual(
      parseClamdReply('stream: Eicar-Test-Signature FOUND\0stream: Heuristics.Encrypted.Zip FOUND\0'),
      { kind: 'infected', names: ['Eicar-Test-Signature'] },
    );
    assert.deepEqual(
      parseClamdReply('stream: Heuristics.Limits.Exceeded.MaxRecursion FOUND\0stream: Heuristics.Encrypted.Zip FOUND\0'),
      { kind: 'not_scanned', reason: 'clamd: Heuristics.Limits.Exceeded.MaxRecursion' },
    );
    assert.deepEqual(parseClamdReply("stream: Can't allocate memory ERROR\0stream: A FOUND\0"), { kind: 'infected', names: ['A'] });
  });
});

describe('spamd replies', () => {
  it('reads a spam verdict with its score, threshold and tests', () => {
    const r = parseSpamdReply('SPAMD/1.1 0 EX_OK\r\nContent-length: 18\r\nSpam: True ; 1003.7 / 5.0\r\n\r\nGTUBE,NO_RECEIVED');
    assert.deepEqual(r, { ok: true, spam: true, score: 1003.7, threshold: 5, tests: ['GTUBE', 'NO_RECEIVED'] });
  });

  it('reads ham with a negative score and no tests', () => {
    assert.deepEqual(
      parseSpamdReply('SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.5 / 5.0\r\n\r\n'),
      { ok: true, spam: false, score: -0.5, threshold: 5, tests: [] },
    );
  });

  it('reports errors and garbage as failures', () => {
    assert.deepEqual(parseSpamdReply('SPAMD/1.0 76 Bad header line: xx\r\n\r\n'), { ok: false, reason: 'spamd: Bad header line: xx' });
    assert.equal(parseSpamdReply('').ok, false);
    assert.equal(parseSpamdReply('HTTP/1.1 400 Bad\r\n\r\n').ok, false);
  });

  it('formats X-Spam-Status as SpamAssassin does', () => {
    assert.equal(
      xSpamStatus({ spam: true, score: 1003.7, threshold: 5, tests: ['GTUBE', 'X'] }),
      'Yes, score=1003.7 required=5.0 tests=GTUBE,X',
    );
    assert.equal(xSpamStatus({ spam: false, score: 0, threshold: 5, tests: [] }), 'No, score=0.0 required=5.0 tests=none');
    // bounded, so that the relay's fields fit the room the advertised SIZE keeps (lib/message_size)
    const many = Array.from({ length: 400 }, (_, i) => `SOME_LONG_RULE_NAME_${i}`);
    const status = xSpamStatus({ spam: true, score: 9, threshold: 5, tests: many });
    assert.ok(status.length < 2100, `${status.length} characters`);
    assert.match(status, /,\+\d+ more$/);
  });
});
