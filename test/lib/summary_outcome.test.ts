import assert from 'node:assert/strict';
import { isRelayFailure, queueAnswerText, queueIdOf, queueOutcome, scannerFailed } from '../../src/lib/summary_outcome';

describe('summary outcome (lib/summary_outcome)', () => {
  it("finds the queue id in the server's answer (Postfix, Exim, Sendmail wordings)", () => {
    assert.equal(queueIdOf('250 2.0.0 Ok: queued as 4Xy1ZqK3'), '4Xy1ZqK3');
    assert.equal(queueIdOf('250 OK id=1rX-000abc-00'), undefined);
    assert.equal(queueIdOf('250 2.0.0 Message accepted; queued as: 1A2b3'), '1A2b3');
    assert.equal(queueIdOf('250 Message Queued (9D1A.1)'), undefined);
    assert.equal(queueIdOf(undefined), undefined);
  });

  it("reads Haraka's queue result for another queue plugin: pass, the server's refusal, a plugin that never answered", () => {
    assert.equal(queueOutcome({ pass: [['2.0.0 Ok: queued as X']] }, 250), 'accepted');
    assert.equal(queueOutcome({ fail: ['5.7.1 no'] }, 550), 'refused');
    assert.equal(queueOutcome({ fail: ['plugin timeout'] }, 450), 'failed');
    assert.equal(queueOutcome(undefined, 451), 'failed');
    assert.equal(queueOutcome(undefined, 250), undefined);
    assert.equal(queueAnswerText(['2.0.0 Ok:', 'queued as X']), '2.0.0 Ok: queued as X');
    assert.equal(queueAnswerText(''), undefined);
  });

  it("tells a scanner's failure from a message it could not look into", () => {
    assert.equal(scannerFailed('not scanned: clamd unavailable (/x.sock: connect ENOENT)'), true);
    assert.equal(scannerFailed('not scanned: clamd /x.sock did not answer within 60 s'), true);
    assert.equal(scannerFailed('not scanned: spamd 127.0.0.1:783: connect ECONNREFUSED'), true);
    assert.equal(scannerFailed('not scanned: scanning took longer than the 50 s timeout_message leaves it'), true);
    assert.equal(scannerFailed('not scanned: clamd: Heuristics.Encrypted.Zip'), false);
    assert.equal(scannerFailed('not scanned: message of 9 bytes exceeds av_scan_obj_max_size 5'), false);
    assert.equal(scannerFailed('not scanned: action_as = accept'), false);
    assert.equal(scannerFailed(undefined), false);
  });

  it('WARNING only for the relay\'s failures: every decision of the policy or the server is NOTICE', () => {
    assert.equal(isRelayFailure({ option: 'action_av_infected' }), false);
    assert.equal(isRelayFailure({ option: 'action_as', av: 'clean', server: 'refused' }), false);
    assert.equal(isRelayFailure({ option: 'action_as', av: 'clean', server: 'accepted' }), false);
    assert.equal(isRelayFailure({ option: 'message_size' }), false);
    assert.equal(isRelayFailure({ option: 'spool' }), true);
    assert.equal(isRelayFailure({ option: 'policy_error' }), true);
    assert.equal(isRelayFailure({ option: 'action_av_notscanned', av: 'not scanned: clamd unavailable (x)' }), true);
    assert.equal(isRelayFailure({ option: 'action_as', av: 'clean', server: 'failed' }), true);
    assert.equal(isRelayFailure({ option: 'action_as', av: 'clean', server: 'unknown' }), true);
  });
});
