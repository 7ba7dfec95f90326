// A plugin object for tests of the shared plugin code: Haraka's config lookups
// answer esets_relay.ini (esets.cfg in the test's Haraka folder), and every log
// line is kept with its level.

import type { Plugin } from '../../src/plugins/shared/haraka';

export interface FakePlugin extends Plugin {
  logs: { level: string; text: string }[];
}

export function fakePlugin(): FakePlugin {
  const logs: { level: string; text: string }[] = [];
  // as Haraka's logger: an object with a name is the line's origin, not its text
  const log = (level: string) => (...args: unknown[]) => {
    logs.push({ level, text: args.filter((a) => !(a && typeof a === 'object' && 'name' in a)).map(String).join(' ') });
  };
  return {
    name: 'test', logs,
    config: { get: () => ({ main: { esets_cfg: 'esets.cfg' } }) },
    register_hook: () => undefined,
    logdebug: log('debug'), loginfo: log('info'), lognotice: log('notice'),
    logwarn: log('warn'), logerror: log('error'), logcrit: log('crit'),
  } as unknown as FakePlugin;
}
