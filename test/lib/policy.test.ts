import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfigFiles } from '../../src/io/config_files';
import { formatDiagnostic } from '../../src/lib/diagnostics';
import { buildConfig } from '../../src/lib/esets_config';
import { AvAction, DEFAULT_CONFIG, EsetsConfig, VerdictAction } from '../../src/lib/esets_options';
import {
  AsOutcome, AvOutcome, decideAs, decideAv, decideMessage, describeAs, describeAv, enhancedCode, PolicyDecision, PolicyReply,
  policyFailed, refuseCaptureFailure, refusedByHaraka, refuseUnreadable, replyFor, wasScanned,
} from '../../src/lib/policy';
import { removeTempDir, tempDir } from '../support/temp_dirs';

const STAGE_ACTIONS: AvAction[] = ['accept', 'scan', 'defer', 'discard', 'reject'];
const VERDICT_ACTIONS: VerdictAction[] = ['accept', 'defer', 'discard', 'reject'];
const AV_OUTCOMES: [string, AvOutcome | undefined][] = [
  ['clean', { kind: 'clean' }],
  ['infected', { kind: 'infected', names: ['Eicar-Test-Signature'] }],
  ['cleaned', { kind: 'cleaned', removed: 1, names: ['Eicar-Test-Signature'] }],
  ['not scanned', { kind: 'not_scanned', reason: 'clamd timed out' }],
  ['no result', undefined],
];
const AS_OUTCOMES: [string, AsOutcome | undefined][] = [
  ['ham', { kind: 'ham', score: 1.2, threshold: 5 }],
  ['spam', { kind: 'spam', score: 1000, threshold: 5 }],
  ['not scanned', { kind: 'not_scanned', reason: 'spamd down' }],
  ['no result', undefined],
];

const base = buildConfig('', 'e.cfg').config;
function config(overrides: Partial<EsetsConfig>): EsetsConfig {
  return { ...base, ...overrides };
}

// The manual's HANDLE OBJECT POLICY, written as the table of which option decides.
const AV_DECIDER: Record<string, 'action_av' | 'action_av_infected' | 'action_av_deleted' | 'action_av_notscanned' | 'accept'> = {
  clean: 'accept', infected: 'action_av_infected', cleaned: 'action_av_deleted', 'not scanned': 'action_av_notscanned',
  'no result': 'action_av_notscanned',
};
const AS_DECIDER: Record<string, 'action_as_spam' | 'action_as_notscanned' | 'accept'> = {
  ham: 'accept', spam: 'action_as_spam', 'not scanned': 'action_as_notscanned', 'no result': 'action_as_notscanned',
};

describe('Handle Object Policy', () => {
  it('AV stage: every action_av, every outcome, every value of the three verdict options', () => {
    let cases = 0;
    for (const action_av of STAGE_ACTIONS) {
      for (const [name, outcome] of AV_OUTCOMES) {
        for (const action_av_infected of VERDICT_ACTIONS) {
          for (const action_av_notscanned of VERDICT_ACTIONS) {
            for (const action_av_deleted of VERDICT_ACTIONS) {
              const c = config({ action_av, action_av_infected, action_av_notscanned, action_av_deleted });
              const got = decideAv(c, outcome);
              const decider = action_av === 'scan' ? AV_DECIDER[name] : 'action_av';
              const expected = decider === 'accept' ? { action: 'accept', option: 'action_av' }
                : { action: decider === 'action_av' ? action_av : c[decider], option: decider };
              assert.deepEqual(got, expected, `${action_av} ${name} ${action_av_infected}/${action_av_notscanned}/${action_av_deleted}`);
              cases++;
            }
          }
        }
      }
    }
    assert.equal(cases, 5 * 5 * 64);
  });

  it('AS stage: every action_as, every outcome, every value of the two verdict options', () => {
    for (const action_as of STAGE_ACTIONS) {
      for (const [name, outcome] of AS_OUTCOMES) {
        for (const action_as_spam of VERDICT_ACTIONS) {
          for (const action_as_notscanned of VERDICT_ACTIONS) {
            const c = config({ action_as, action_as_spam, action_as_notscanned });
            const decider = action_as === 'scan' ? AS_DECIDER[name] : 'action_as';
            const expected = decider === 'accept' ? { action: 'accept', option: 'action_as' }
              : { action: decider === 'action_as' ? action_as : c[decider], option: decider };
            assert.deepEqual(decideAs(c, outcome), expected, `${action_as} ${name}`);
          }
        }
      }
    }
  });

  it('cascade: the AS stage decides only when the AV stage accepted', () => {
    for (const action_av of STAGE_ACTIONS) {
      for (const [, av] of AV_OUTCOMES) {
        for (const action_as of STAGE_ACTIONS) {
          for (const [, as] of AS_OUTCOMES) {
            for (const verdictAction of VERDICT_ACTIONS) {
              const c = config({
                action_av, action_as,
                action_av_infected: verdictAction, action_av_notscanned: verdictAction, action_av_deleted: verdictAction,
                action_as_spam: verdictAction, action_as_notscanned: verdictAction,
              });
              const av1 = decideAv(c, av);
              const got = decideMessage(c, av, as);
              const expected = av1.action === 'accept'
                ? { ...decideAs(c, as), verdict: describeAs(as, c) }
                : { ...av1, verdict: describeAv(av, c) };
              assert.deepEqual(got, expected);
              assert.ok(got.action !== 'scan' as string);
            }
          }
        }
      }
    }
  });

  it('describes verdicts for headers and logs', () => {
    assert.equal(describeAv({ kind: 'clean' }, base), 'clean');
    assert.equal(describeAv({ kind: 'infected', names: ['A', 'B'] }, base), 'infected: A, B');
    assert.equal(describeAv({ kind: 'cleaned', removed: 2, names: ['A', 'B'] }, base), 'cleaned: 2 parts removed (A, B)');
    assert.equal(describeAv({ kind: 'not_scanned', reason: 'clamd down' }, base), 'not scanned: clamd down');
    assert.equal(describeAv(undefined, config({ action_av: 'accept' })), 'not scanned: action_av = accept');
    assert.equal(describeAs({ kind: 'spam', score: 1000, threshold: 5 }, config({ action_as: 'scan' })), 'spam (score 1000/5)');
  });

  it('answers reject with 550 5.7.1, defer with 451 4.7.1 and discard with 250, naming the verdict', () => {
    const decided = (action: 'reject' | 'defer' | 'discard', verdict: string): PolicyDecision => ({
      action, option: 'action_av_infected', verdict,
    });
    const shown = (r: PolicyReply): string => `${r.code} ${enhancedCode(r.enhanced)} ${r.text}`;
    assert.equal(shown(replyFor(decided('reject', 'infected: X'))), '550 5.7.1 Message rejected (infected: X)');
    assert.equal(shown(replyFor(decided('defer', 'not scanned: y'))), '451 4.7.1 Message deferred, try again later (not scanned: y)');
    assert.equal(shown(replyFor(decided('discard', 'infected: X'))), '250 2.0.0 Message accepted');
    assert.doesNotMatch(replyFor(decided('reject', 'a\r\nb')).text, /[\r\n]/);
  });

  it('answers a message not kept from the same table: 552 5.3.4 over the size, 452 4.3.1 a spool failure, no detail shown', () => {
    const shown = (r: PolicyReply): string => `${r.code} ${enhancedCode(r.enhanced)} ${r.text}`;
    assert.equal(shown(replyFor(refuseCaptureFailure({ kind: 'too_big', limit: 1000 }))),
      '552 5.3.4 Message size exceeds fixed maximum message size');
    assert.equal(shown(replyFor(refuseCaptureFailure({ kind: 'spool_error', reason: 'spool write failed: ENOSPC' }))),
      '452 4.3.1 Insufficient system storage, try again later');
    // a part that could not be spooled fails the message the same way, whatever action_av_notscanned says
    const accepting = { ...DEFAULT_CONFIG, action_av_notscanned: 'accept' as const };
    const d = decideMessage(accepting, { kind: 'spool_error', reason: 'spool write failed: EIO' }, undefined);
    assert.equal(shown(replyFor(d)), '452 4.3.1 Insufficient system storage, try again later');
    assert.equal(wasScanned({ kind: 'spool_error', reason: 'x' }), false);
  });

  it('answers the refusals before the policy from the same table: 550 5.6.0 unreadable, 451 4.4.0 policy failure, '
    + 'Haraka\'s class kept', () => {
    assert.equal(
      `${replyFor(refuseUnreadable('bare LF in line 3')).code} ${replyFor(refuseUnreadable('x')).text}`,
      '550 Message refused: x',
    );
    assert.equal(enhancedCode(replyFor(refuseUnreadable('x')).enhanced), '5.6.0');
    const failed = replyFor(policyFailed('no captured message'));
    assert.equal(`${failed.code} ${enhancedCode(failed.enhanced)}`, '451 4.4.0');
    assert.doesNotMatch(failed.text, /captured/, 'the internal reason stays in the log');
    assert.deepEqual(refusedByHaraka(552), { action: 'reject', option: 'haraka', verdict: 'refused by Haraka' });
    assert.equal(refusedByHaraka(451)?.action, 'defer');
    assert.equal(refusedByHaraka(250), undefined);
  });
});


describe('load warning: what passes unscanned', () => {
  const warnings = (text: string): string[] => buildConfig(text, 'esets.cfg').diagnostics
    .filter((d) => d.severity === 'warning' && d.key === 'action_av_notscanned').map(formatDiagnostic);

  it('names both options and the line when action_av_notscanned = accept meets av_scan_obj_max_size', () => {
    assert.deepEqual(warnings('[smtp]\nav_scan_obj_max_size = 10M\naction_av_notscanned = accept\n'), [
      'esets.cfg:3: warning: action_av_notscanned = accept with av_scan_obj_max_size = 10485760: a message over 10485760 bytes '
      + 'is delivered without a virus scan (a virus padded past the limit passes), as is one clamd cannot scan; '
      + 'set action_av_notscanned = defer or reject, or av_scan_obj_max_size = 0',
    ]);
  });

  it('names the user section (and the esets.cfg line naming user_config) that sets what passes unscanned', () => {
    const dir = tempDir('esets-warn-');
    try {
      const cfg = path.join(dir, 'esets.cfg');
      fs.writeFileSync(cfg, '[smtp]\nav_scan_obj_max_size = 1M\nuser_config = "users.cfg"\n');
      const users = '[strict.example]\naction_av_infected = reject\n\n[lax.example]\naction_av_notscanned = accept\n';
      fs.writeFileSync(path.join(dir, 'users.cfg'), users);
      const { diagnostics } = loadConfigFiles(cfg, {}, 'command line');
      const said = diagnostics.filter((d) => d.key === 'action_av_notscanned').map(formatDiagnostic);
      assert.equal(said.length, 1, said.join('\n'));
      assert.match(said[0], /users\.cfg:4: warning: \[lax\.example\]: action_av_notscanned = accept with av_scan_obj_max_size = 1048576: /);
      assert.match(said[0], /\(user_config, named at .*esets\.cfg:3\)$/);
    } finally {
      removeTempDir(dir);
    }
  });

  it('says nothing without a size limit, with defer or reject, or when the AV stage does not scan', () => {
    assert.deepEqual(warnings('[smtp]\naction_av_notscanned = accept\n'), []);
    assert.deepEqual(warnings('[smtp]\nav_scan_obj_max_size = 10M\naction_av_notscanned = defer\n'), []);
    assert.deepEqual(warnings('[smtp]\nav_scan_obj_max_size = 10M\naction_av_notscanned = accept\naction_av = reject\n'), []);
  });
});

describe('the verdict in the client\'s reply', () => {
  it("leaves out the scanners' addresses and socket paths", async () => {
    const { publicVerdict } = await import('../../src/lib/policy');
    assert.equal(
      publicVerdict('not scanned: clamd unavailable (clamd /run/x/clamd.sock: connect ENOENT /run/x/clamd.sock)'),
      'not scanned: clamd unavailable (clamd connect ENOENT)',
    );
    assert.equal(
      publicVerdict('not scanned: clamd 10.1.2.3:3310 did not answer within 2 s'),
      'not scanned: clamd did not answer within 2 s',
    );
    assert.equal(publicVerdict('not scanned: spamd [::1]:783: connect ECONNREFUSED'), 'not scanned: spamd connect ECONNREFUSED');
    assert.equal(publicVerdict('infected: Eicar-Test-Signature'), 'infected: Eicar-Test-Signature');
  });
});
