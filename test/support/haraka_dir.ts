// A Haraka directory for plugin tests: config/esets_relay.ini pointing at an
// esets.cfg written by the test, set as HARAKA before a plugin is made.

import fs from 'node:fs';
import path from 'node:path';
import { forgetRelayConfig } from '../../src/plugins/shared/relay_config';
import { tempDir } from './temp_dirs';

export function useHarakaDir(esetsCfg: string): string {
  const dir = tempDir('esets-haraka-');
  fs.mkdirSync(path.join(dir, 'config'));
  fs.writeFileSync(path.join(dir, 'config', 'esets.cfg'), esetsCfg);
  fs.writeFileSync(path.join(dir, 'config', 'esets_relay.ini'), '[main]\nesets_cfg=esets.cfg\n');
  process.env.HARAKA = dir;
  forgetRelayConfig();
  return dir;
}
