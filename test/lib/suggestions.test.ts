// "did you mean": the nearest option name, only a close one, only among the options valid where it was written.

import assert from 'node:assert/strict';
import { parseCommandLine } from '../../src/lib/command_line';
import { buildConfig } from '../../src/lib/esets_config';
import { inFileOrder } from '../../src/lib/diagnostics';
import { didYouMean, editDistance, nearestName } from '../../src/lib/suggestions';
import { parseUserConfig } from '../../src/lib/user_config';

describe('option suggestions', () => {
  it('counts insertions, deletions, substitutions and a swap of neighbours as one edit each', () => {
    assert.equal(editDistance('action_av_infectd', 'action_av_infected'), 1);
    assert.equal(editDistance('listen_prot', 'listen_port'), 1);
    assert.equal(editDistance('num_proc', 'num_thrd'), 4);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('same', 'same'), 0);
  });

  it('suggests the nearest name within the threshold, and nothing when none is close or the word is short', () => {
    const names = ['action_av', 'action_av_infected', 'action_as', 'listen_port'];
    assert.equal(nearestName('action_av_infectd', names), 'action_av_infected');
    assert.equal(nearestName('ACTION_AV_INFECTD', names), 'action_av_infected');
    assert.equal(nearestName('colour', names), undefined);
    assert.equal(nearestName('num_prc', ['num_thrd']), undefined);
    assert.equal(nearestName('abc', ['abd']), undefined);
    assert.equal(didYouMean('listen_prot', names, (n) => `--${n}`), " (did you mean '--listen_port'?)");
    assert.equal(didYouMean('shade', names), '');
  });

  it('esets.cfg: the warning names the nearest option valid in that section', () => {
    const r = buildConfig('[global]\ndaemon_sock_pth = /x\n[smtp]\naction_av_infectd = reject\ncolour = blue\n', '/x/esets.cfg');
    assert.deepEqual(r.diagnostics.map((d) => `${d.line}: ${d.message}`), [
      "2: unknown option 'daemon_sock_pth' in [global] is ignored (did you mean 'daemon_sock_path'?)",
      "4: unknown option 'action_av_infectd' in [smtp] is ignored (did you mean 'action_av_infected'?)",
      "5: unknown option 'colour' in [smtp] is ignored",
    ]);
  });

  it('esets.cfg: no suggestion of an option that is not valid in the section (daemon_sock_path is [global] only)', () => {
    const r = buildConfig('[smtp]\ndaemon_sock_pth = /x\n', '/x/esets.cfg');
    assert.equal(r.diagnostics[0].message, "unknown option 'daemon_sock_pth' in [smtp] is ignored");
  });

  it('user_config: only the options a user section may hold are suggested', () => {
    const { diagnostics } = parseUserConfig('[a.example]\naction_as_spm = reject\nlisten_prot = 25\n', 'users.cfg');
    assert.deepEqual(diagnostics.map((d) => d.message), [
      "unknown option 'action_as_spm' in [a.example] is ignored (did you mean 'action_as_spam'?)",
      "unknown option 'listen_prot' in [a.example] is ignored",
    ]);
  });

  it('command line: the nearest option as it is typed there, and --help otherwise', () => {
    const msgs = (args: string[]): string[] => parseCommandLine(args).diagnostics.map((d) => d.message);
    assert.deepEqual(msgs(['--action-av-infectd', 'reject']).slice(0, 1),
      ["unknown option '--action-av-infectd' (did you mean '--action-av-infected'?)"]);
    assert.deepEqual(msgs(['--no-add-header-xvirs']), ["unknown option '--no-add-header-xvirs' (did you mean '--no-add-header-xvirus'?)"]);
    assert.deepEqual(msgs(['--chekc']), ["unknown option '--chekc' (did you mean '--check'?)"]);
    assert.deepEqual(msgs(['--colour', 'x']).slice(0, 1), ["unknown option '--colour' (see --help)"]);
    // a [global]-only option is not one of the command line's
    assert.deepEqual(msgs(['--daemon-sock-pth=/x']), ["unknown option '--daemon-sock-pth' (see --help)"]);
  });
});

describe('malformed section headers', () => {
  it('are an error at their line, and the lines under them are not judged as the section above', () => {
    const text = '[global]\nspamd_timeout = 5\n[smtp\nagent_enabled = yes\nlisten_port = 25\nbogus line\n[smtp]\nnum_proc = 2\n';
    const r = buildConfig(text, '/x/esets.cfg');
    assert.deepEqual(r.diagnostics.map((d) => `${d.line}: ${d.severity}: ${d.message}`), [
      "3: error: malformed section header '[smtp': expected '[name]' alone on its line; "
        + 'the lines below it, up to the next section header, are not read',
    ]);
    // read again from the next good header on
    assert.equal(r.config.num_proc, 2);
    assert.equal(r.config.agent_enabled, false);
  });

  it('cover text after the bracket and a header never closed', () => {
    const r = buildConfig('[smtp] # the agent\nagent_enabled = yes\n[global\n', '/x/esets.cfg');
    assert.deepEqual(r.diagnostics.map((d) => d.line), [1, 3]);
    assert.ok(r.diagnostics.every((d) => d.severity === 'error' && /malformed section header/.test(d.message)));
  });

  it('in user_config: the lines under a broken header do not join the user section above', () => {
    const { userConfig, diagnostics } = parseUserConfig('[a.example]\naction_av = reject\n[b.example\naction_av = accept\n', 'users.cfg');
    assert.deepEqual(diagnostics.map((d) => `${d.line}: ${d.severity}`), ['3: error']);
    assert.equal(userConfig.sections[0].settings.action_av, 'reject');
  });

  it('are said first when the diagnostics are put in file order (warnings found later by other passes come after)', () => {
    const r = buildConfig('[smtp\nx = 1\n[smtp]\ncolour = blue\n', '/x/esets.cfg');
    assert.deepEqual(inFileOrder([...r.diagnostics].reverse()).map((d) => d.line), [1, 4]);
  });
});
