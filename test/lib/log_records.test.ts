import assert from 'node:assert/strict';
import { asInfo, isSessionNotice, jsonRecord } from '../../src/lib/log_records';

describe("Haraka's records under the launcher (lib/log_records)", () => {
  it("picks Haraka's per-session NOTICE lines in every format, not the manager's, not a plugin's", () => {
    assert.equal(isSessionNotice('[NOTICE] [AB-12.1] [core] queue code=OK msg="x"', 'DEFAULT'), true);
    assert.equal(isSessionNotice('[NOTICE] [-] [core] [esets_smtp] Haraka 3.3.4 in use', 'DEFAULT'), false);
    assert.equal(isSessionNotice('[NOTICE] [AB-12.1] [esets_policy] trace=AB-12.1 action=accept', 'DEFAULT'), false);
    assert.equal(isSessionNotice('[WARN] [AB-12] [core] connect', 'DEFAULT'), false);
    assert.equal(isSessionNotice('level=NOTICE uuid=AB-12 origin=core message=connect', 'LOGFMT'), true);
    assert.equal(isSessionNotice('level=NOTICE uuid=- origin=core message=x', 'LOGFMT'), false);
    assert.equal(isSessionNotice('{"level":"NOTICE","uuid":"AB-12","origin":"core","message":"connect"}', 'JSON'), true);
    assert.equal(isSessionNotice('{"level":"NOTICE","uuid":"-","origin":"server","message":"x"}', 'JSON'), false);
    assert.equal(isSessionNotice('not json', 'JSON'), false);
  });

  it('rewrites the level word alone', () => {
    assert.equal(asInfo('[NOTICE] [AB] [core] message mid=<[NOTICE]>', 'DEFAULT'), '[INFO] [AB] [core] message mid=<[NOTICE]>');
    assert.equal(asInfo('level=NOTICE uuid=AB origin=core', 'LOGFMT'), 'level=INFO uuid=AB origin=core');
    const info = asInfo('{"level":"NOTICE","uuid":"AB","message":"m"}', 'JSON');
    assert.deepEqual(JSON.parse(info), { level: 'INFO', uuid: 'AB', message: 'm' });
  });

  it('a JSON record keeps its time inside; plain text becomes a record of its level', () => {
    assert.equal(jsonRecord('{"level":"WARN","message":"x"}', 'WARN', 'T'), '{"timestamp":"T","level":"WARN","message":"x"}');
    assert.equal(jsonRecord('{"level":"WARN","message":"x"}', 'WARN'), '{"level":"WARN","message":"x"}');
    assert.deepEqual(JSON.parse(jsonRecord('loglevel: NOTICE', 'INFO', 'T')), {
      timestamp: 'T', level: 'INFO', uuid: '-', origin: 'core', message: 'loglevel: NOTICE',
    });
  });
});
