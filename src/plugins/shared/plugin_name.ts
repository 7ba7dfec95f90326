// Installed from npm into a Haraka folder, our plugins are listed by their
// path in the package (`esets-relay/esets_policy`), and Haraka names a plugin
// by what config/plugins says. As Haraka itself does for `haraka-plugin-NAME`,
// each plugin takes its short name at register: its log lines, results and
// skip_plugins entry are `esets_policy` in every deployment.

import { ourPluginName } from '../../lib/haraka_c_rules';

interface Named {
  name: string;
  register_hook(hook: string, method: string, priority?: number): void;
}

export function useShortName(plugin: Named): void {
  const listed = plugin.name;
  const short = ourPluginName(listed);
  if (short === listed) return;
  plugin.name = short;
  // Haraka runs a hook by the name its plugin was listed under (its registered_plugins): each hook,
  // ours and the hook_* methods Haraka registers after register(), is recorded under that name
  const registerHook = plugin.register_hook;
  plugin.register_hook = function (this: Named, hook: string, method: string, priority?: number): void {
    this.name = listed;
    try {
      registerHook.call(this, hook, method, priority);
    } finally {
      this.name = short;
    }
  };
}
