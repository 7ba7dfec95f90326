import assert from 'node:assert/strict';
import { formatDiagnostic } from '../../src/lib/diagnostics';
import { fileTrustWarnings } from '../../src/lib/file_trust';

describe('user_config that others can change', () => {
  const at = { file: '/etc/esets/esets.cfg', line: 12 };
  const facts = { path: '/etc/esets/users.cfg', mode: 0o100644, dirMode: 0o40755 };
  const warnings = (f: Partial<typeof facts> & { symlinkTarget?: string }): string[] =>
    fileTrustWarnings('user_config', { ...facts, ...f }, at).map(formatDiagnostic);

  it('says nothing of a file only its owner can write, in a folder only its owner can write', () => {
    assert.deepEqual(warnings({}), []);
  });

  it('warns, at the esets.cfg line that names it, of a world-writable file', () => {
    assert.deepEqual(warnings({ mode: 0o100666 }), [
      '/etc/esets/esets.cfg:12: warning: user_config /etc/esets/users.cfg is world-writable (mode 0666): '
        + 'any local user can change the policy; chmod o-w it',
    ]);
  });

  it('warns of a symbolic link, naming its target', () => {
    assert.deepEqual(warnings({ symlinkTarget: '/srv/shared/users.cfg' }), [
      '/etc/esets/esets.cfg:12: warning: user_config /etc/esets/users.cfg is a symbolic link (to /srv/shared/users.cfg): '
        + 'whoever can change the link chooses the file; name the file itself',
    ]);
  });

  it('warns of a world-writable folder without the sticky bit, not of one with it (as /tmp)', () => {
    assert.deepEqual(warnings({ dirMode: 0o40777 }), [
      '/etc/esets/esets.cfg:12: warning: user_config /etc/esets/users.cfg is in a world-writable folder without the sticky bit '
        + '(mode 0777): any local user can replace it; chmod o-w the folder',
    ]);
    assert.deepEqual(warnings({ dirMode: 0o41777 }), []);
  });

  it('names an override instead of a line when the path came from the command line', () => {
    const [only] = fileTrustWarnings('user_config', { ...facts, mode: 0o100646 }, { file: 'command line' }).map(formatDiagnostic);
    assert.match(only, /^command line: warning: user_config \/etc\/esets\/users\.cfg is world-writable \(mode 0646\)/);
  });
});
