// At start: the clamd.conf of the clamd in daemon_sock_path (esets.cfg
// [global] clamd_config, or Debian's for Debian's socket: lib/clamd_conf
// clamdConfFor) checked for the settings the relay needs, a warning for each
// one missing: without them clamd calls content it could not scan clean. With
// no such file named, that is said once (info); an absent file is silent
// (clamd may run on another host).

import cluster from 'node:cluster';
import fs from 'node:fs';
import path from 'node:path';
import { MAX_CLAMD_CONF_BYTES } from '../../io/clamd_limits';
import { clamdConfWarnings, noClamdConfNote } from '../../lib/clamd_conf';
import { formatDiagnostic } from '../../lib/diagnostics';
import type { Plugin } from '../shared/haraka';
import { clamdConfFile } from '../shared/clamd_conf_file';
import { relayConfig } from '../shared/relay_config';
import { relayLog } from '../shared/relay_log';

/** The shipped snippet with every setting the relay needs. */
export const CLAMD_SNIPPET = path.resolve(__dirname, '..', '..', '..', '..', 'config', 'clamd-esets-relay.conf');

export function checkClamdConf(plugin: Plugin): void {
  // the manager and each worker load the plugins: the manager's warning is enough
  if (cluster.isWorker) return;
  const rc = relayConfig(plugin);
  const file = clamdConfFile(plugin);
  if (!file) {
    relayLog(plugin, undefined, rc.config).info(noClamdConfNote(rc.config.daemon_sock_path));
    return;
  }
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile() || stat.size > MAX_CLAMD_CONF_BYTES) return;
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return; // absent or unreadable: nothing to check
  }
  const log = relayLog(plugin, undefined, rc.config);
  for (const d of clamdConfWarnings(text, file, CLAMD_SNIPPET)) log.warning(formatDiagnostic(d));
}
