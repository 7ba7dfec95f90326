import assert from 'node:assert/strict';
import { journalRecord } from '../../src/lib/journal';

describe('journal priorities (lib/journal)', () => {
  it("gives a record the syslog priority of Haraka's level word", () => {
    assert.equal(
      journalRecord('2026-11-25T20:04:11.977Z [NOTICE] [-] [server] worker started\n'),
      '<5>2026-11-25T20:04:11.977Z [NOTICE] [-] [server] worker started\n',
    );
    assert.equal(journalRecord('[ERROR] [x] [esets_forward] mail server down\n'), '<3>[ERROR] [x] [esets_forward] mail server down\n');
    assert.equal(journalRecord('[WARN] a\n'), '<4>[WARN] a\n');
    assert.equal(journalRecord('[CRIT] a\n'), '<2>[CRIT] a\n');
    assert.equal(journalRecord('[PROTOCOL] C: EHLO x\n'), '<7>[PROTOCOL] C: EHLO x\n');
  });

  it("reads the level of Haraka's LOGFMT and JSON records (the launcher puts a JSON record's time inside it)", () => {
    assert.equal(journalRecord('level=WARN uuid=- origin=core message=x\n'), '<4>level=WARN uuid=- origin=core message=x\n');
    assert.equal(journalRecord('{"level":"ERROR","uuid":"-","message":"x"}\n'), '<3>{"level":"ERROR","uuid":"-","message":"x"}\n');
    assert.equal(
      journalRecord('{"timestamp":"2026-12-06T10:00:00.000Z","level":"NOTICE","message":"x"}\n'),
      '<5>{"timestamp":"2026-12-06T10:00:00.000Z","level":"NOTICE","message":"x"}\n',
    );
    // a level only inside the message is no level
    assert.equal(journalRecord('{"message":"\\"level\\":\\"EMERG\\""}\n'), '<6>{"message":"\\"level\\":\\"EMERG\\""}\n');
  });

  it('a line without a level word gets the fallback (info, or err for stderr)', () => {
    assert.equal(journalRecord('Using iconv-lite only\n'), '<6>Using iconv-lite only\n');
    assert.equal(journalRecord('esets_smtp: not started\n', 3), '<3>esets_smtp: not started\n');
  });

  it("every line of one record gets the record's priority: text inside cannot choose one", () => {
    assert.equal(
      journalRecord('[INFO] [x] header: a\n[CRIT] forged\n<0>forged too\n'),
      '<6>[INFO] [x] header: a\n<6>[CRIT] forged\n<6><0>forged too\n',
    );
  });
});
