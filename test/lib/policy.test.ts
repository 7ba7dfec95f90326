import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfigFiles } from '../../src/io/config_files';
import { formatDiagnostic } from '../../src/lib/diagnostics';
import { buildConfig } from '../../src/lib/esets_config';
import { AvAction, DEFAULT_CONFIG, EsetsConfig, VerdictAction } from '../../src/lib/esets_options';
import {
  AsOutcome, AvOutcome, decideAs, decideAv, decideMessage, describeAs, describeAv, PolicyDecision,
  policyFailed, refuseCaptureFailure, refusedByHaraka, refuseUnreadable, verdictReply, wasScanned,
} from '../../src/lib/policy';
import { relayReply, replyLine } from '../../src/lib/relay_replies';
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
              const as1 = decideAs(c, as);
              const expected = av1.action === 'accept'
                ? { ...as1, verdict: describeAs(as, c), reply: verdictReply(as1, av) }
                : { ...av1, verdict: describeAv(av, c), reply: verdictReply(av1, av) };
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

  // the reply a decision gets, as the client reads it (trace T)
  const shown = (d: PolicyDecision): string => (d.reply ? replyLine(relayReply(d.reply, 'T')) : 'the server\'s or Haraka\'s reply');

  it('answers reject with 550 5.7.1, defer with 451 4.7.1 and discard with 250, naming the verdict class', () => {
    const c = (action: VerdictAction): EsetsConfig => config({
      action_av: 'scan', action_av_infected: action, action_av_notscanned: action, action_av_deleted: action,
      action_as: 'scan', action_as_spam: action, action_as_notscanned: action,
    });
    const infected: AvOutcome = { kind: 'infected', names: ['Eicar-Test-Signature (part 1.2)'] };
    const down: AvOutcome = { kind: 'not_scanned', reason: 'clamd unavailable (clamd connect ECONNREFUSED 127.0.0.1:31311)' };
    const ham: AsOutcome = { kind: 'ham', score: 1, threshold: 5 };
    const spam: AsOutcome = { kind: 'spam', score: 9, threshold: 5 };
    const spamdDown: AsOutcome = { kind: 'not_scanned', reason: 'spamd [::1]:783: connect ECONNREFUSED' };
    const cases: [VerdictAction, AvOutcome | undefined, AsOutcome | undefined, string][] = [
      ['reject', infected, ham,
        '550 5.7.1 Message rejected: virus found (Eicar-Test-Signature (part 1.2)), remove it before sending again (trace T)'],
      ['defer', infected, ham, '451 4.7.1 Message deferred: virus found (Eicar-Test-Signature (part 1.2)), try again later (trace T)'],
      ['reject', { kind: 'cleaned', removed: 1, names: ['Banned.exe (part 1.2)'] }, ham,
        '550 5.7.1 Message rejected: banned attachment (Banned.exe (part 1.2)), remove it before sending again (trace T)'],
      ['reject', down, ham, '550 5.7.1 Message rejected: it could not be scanned for viruses, contact the postmaster (trace T)'],
      ['defer', down, ham, '451 4.7.1 Message deferred: it could not be scanned for viruses, try again later (trace T)'],
      ['defer', undefined, ham, '451 4.7.1 Message deferred: it could not be scanned for viruses, try again later (trace T)'],
      ['reject', { kind: 'clean' }, spam, '550 5.7.1 Message rejected as spam, contact the postmaster if it is not (trace T)'],
      ['defer', { kind: 'clean' }, spam, '451 4.7.1 Message deferred as spam, try again later (trace T)'],
      ['reject', { kind: 'clean' }, spamdDown,
        '550 5.7.1 Message rejected: it could not be checked for spam, contact the postmaster (trace T)'],
      ['defer', { kind: 'clean' }, spamdDown, '451 4.7.1 Message deferred: it could not be checked for spam, try again later (trace T)'],
      ['discard', infected, ham, '250 2.0.0 Message accepted (trace T)'],
      ['accept', infected, ham, 'the server\'s or Haraka\'s reply'],
    ];
    for (const [action, av, as, expected] of cases) {
      assert.equal(shown(decideMessage(c(action), av, as)), expected, `${action} ${av?.kind}`);
    }
    // a fixed stage action: the policy, in general words
    assert.equal(shown(decideMessage(config({ action_av: 'reject' }), undefined, undefined)),
      '550 5.7.1 Message rejected by the mail policy, contact the postmaster (trace T)');
    assert.equal(shown(decideMessage(config({ action_av: 'accept', action_as: 'defer' }), undefined, undefined)),
      '451 4.7.1 Message deferred by the mail policy, try again later (trace T)');
    // what was in the reason stays in the log (the summary's verdict)
    assert.match(decideMessage(c('defer'), down, ham).verdict, /ECONNREFUSED 127\.0\.0\.1:31311/);
  });

  it('names the verdict class, never the reason a scan failed, for every action and outcome', () => {
    for (const action of VERDICT_ACTIONS) {
      for (const [, av] of AV_OUTCOMES) {
        for (const [, as] of AS_OUTCOMES) {
          const c = config({ action_av_infected: action, action_av_notscanned: action, action_as: 'scan', action_as_spam: action,
            action_as_notscanned: action });
          const d = decideMessage(c, av, as);
          assert.equal(d.reply === null, d.action === 'accept');
          assert.doesNotMatch(shown(d), /clamd|spamd|timed out|down/);
        }
      }
    }
  });

  it('answers a message not kept from the same table: 552 5.3.4 over the size, 452 4.3.1 a spool failure, no detail shown', () => {
    assert.equal(shown(refuseCaptureFailure({ kind: 'too_big', limit: 1000 })),
      '552 5.3.4 Message size exceeds fixed maximum message size (trace T)');
    assert.equal(shown(refuseCaptureFailure({ kind: 'spool_error', reason: 'spool write failed: ENOSPC' })),
      '452 4.3.1 Insufficient system storage, try again later (trace T)');
    // a part that could not be spooled fails the message the same way, whatever action_av_notscanned says
    const accepting = { ...DEFAULT_CONFIG, action_av_notscanned: 'accept' as const };
    const d = decideMessage(accepting, { kind: 'spool_error', reason: 'spool write failed: EIO' }, undefined);
    assert.equal(shown(d), '452 4.3.1 Insufficient system storage, try again later (trace T)');
    assert.equal(wasScanned({ kind: 'spool_error', reason: 'x' }), false);
  });

  it('answers the refusals before the policy from the same table: 550 5.6.0 unreadable, 451 4.3.0 policy failure, '
    + 'Haraka\'s own reply kept', () => {
    assert.equal(shown(refuseUnreadable('bare LF in line 3')),
      '550 5.6.0 Message refused: malformed message (bare LF in line 3), correct it before sending again (trace T)');
    assert.equal(shown(policyFailed('no captured message')), '451 4.3.0 Temporary failure while scanning, try again later (trace T)');
    assert.deepEqual(refusedByHaraka(552), { action: 'reject', option: 'haraka', verdict: 'refused by Haraka', reply: null });
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
