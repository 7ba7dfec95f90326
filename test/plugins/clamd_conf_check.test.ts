// esets_policy's start-up check of the local clamd.conf (esets.cfg clamd_config).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Plugin } from '../../src/plugins/shared/haraka';
import { clamdConfFor } from '../../src/lib/clamd_conf';
import { CLAMD_SNIPPET, checkClamdConf } from '../../src/plugins/esets_policy/clamd_conf_check';
import { forgetRelayConfig } from '../../src/plugins/shared/relay_config';
import { useHarakaDir } from '../support/haraka_dir';

function plugin(warnings: string[]): Plugin {
  return {
    name: 'esets_policy',
    config: { get: () => ({ main: { esets_cfg: 'esets.cfg' } }) },
    register_hook: () => undefined,
    logwarn: (...a: unknown[]) => { warnings.push(a.join(' ')); },
    logdebug: () => undefined, loginfo: () => undefined, lognotice: () => undefined, logerror: () => undefined, logcrit: () => undefined,
  } as unknown as Plugin;
}

/** Runs the check with clamd_config naming `name` in the Haraka config folder (written when `text` is given). */
function check(name: string, text?: string): { warnings: string[]; file: string } {
  const dir = useHarakaDir(`[global]\nclamd_config = "${name}"\n[smtp]\nagent_enabled = yes\n`);
  const file = path.join(dir, 'config', name);
  if (text !== undefined) fs.writeFileSync(file, text);
  const warnings: string[] = [];
  checkClamdConf(plugin(warnings));
  return { warnings, file };
}

describe('esets_policy: the clamd.conf check at start', () => {
  afterEach(() => forgetRelayConfig());

  it('warns, naming the file and the fix, when clamd_config lacks AlertExceedsMax', () => {
    const { warnings, file } = check('clamd.conf', 'LocalSocket /run/clamav/clamd.ctl\nAlertEncrypted yes\nMaxFileSize 401M\n');
    assert.deepEqual(warnings, [
      `${file}: warning: AlertExceedsMax is not set: content beyond clamd's limits (MaxScanSize, MaxFileSize, MaxRecursion, MaxFiles) `
        + `is reported clean; add "AlertExceedsMax yes" (${CLAMD_SNIPPET} has every setting the relay needs) and restart clamd`,
    ]);
    assert.ok(fs.existsSync(CLAMD_SNIPPET), 'the fix names a file that exists');
  });

  it('is silent when the file has what the relay needs', () => {
    assert.deepEqual(check('clamd.conf', fs.readFileSync(CLAMD_SNIPPET, 'utf8')).warnings, []);
  });

  it('reads Debian\'s clamd.conf only for Debian\'s socket, no file for another clamd unless clamd_config names one', () => {
    assert.equal(clamdConfFor('', ['/run/clamav/clamd.ctl']), '/etc/clamav/clamd.conf');
    assert.equal(clamdConfFor('', ['127.0.0.1:3310', '/var/run/clamav/clamd.ctl']), '/etc/clamav/clamd.conf');
    assert.equal(clamdConfFor('', ['127.0.0.1:3310']), undefined);
    assert.equal(clamdConfFor('', ['/tmp/private/clamd.sock']), undefined);
    assert.equal(clamdConfFor('my-clamd.conf', ['127.0.0.1:3310']), 'my-clamd.conf');
  });

  it('says once (info), naming daemon_sock_path and the option, when no clamd.conf is named for a private clamd', () => {
    useHarakaDir('[global]\ndaemon_sock_path = "127.0.0.1:3310"\n[smtp]\nagent_enabled = yes\n');
    const warnings: string[] = [];
    const infos: string[] = [];
    checkClamdConf({ ...plugin(warnings), lognotice: (...a: unknown[]) => { infos.push(a.join(' ')); } } as Plugin);
    assert.deepEqual(warnings, []);
    assert.equal(infos.length, 1, infos.join('\n'));
    assert.match(infos[0], /no clamd\.conf checked: clamd_config is not set and daemon_sock_path \(127\.0\.0\.1:3310\) is not Debian's clamd/);
  });

  it('is silent when the file is absent, or not a file', () => {
    assert.deepEqual(check('absent.conf').warnings, []);
    assert.deepEqual(check('.').warnings, []);
  });
});
