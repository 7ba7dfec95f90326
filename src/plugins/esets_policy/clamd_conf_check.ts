// At start: the local clamd.conf (esets.cfg [global] clamd_config) checked
// for the settings the relay needs (src/lib/clamd_conf.ts), a warning for
// each one missing: without them clamd calls content it could not scan clean.
// Silent when there is no such file (clamd may run on another host).

import cluster from 'node:cluster';
import fs from 'node:fs';
import path from 'node:path';
import { clamdConfWarnings } from '../../lib/clamd_conf';
import { formatDiagnostic } from '../../lib/diagnostics';
import type { Plugin } from '../shared/haraka';
import { relayConfig } from '../shared/relay_config';
import { relayLog } from '../shared/relay_log';

/** The shipped snippet with every setting the relay needs. */
export const CLAMD_SNIPPET = path.resolve(__dirname, '..', '..', '..', '..', 'config', 'clamd-esets-relay.conf');

/** A clamd.conf is a few KB: a bigger "file" (a device, a log named by mistake) is not read. */
const MAX_CONF_BYTES = 1024 * 1024;

export function checkClamdConf(plugin: Plugin): void {
  // the manager and each worker load the plugins: the manager's warning is enough
  if (cluster.isWorker) return;
  const rc = relayConfig(plugin);
  const file = path.resolve(path.dirname(rc.file), rc.config.clamd_config);
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile() || stat.size > MAX_CONF_BYTES) return;
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return; // absent or unreadable: nothing to check
  }
  const log = relayLog(plugin, undefined, rc.config);
  for (const d of clamdConfWarnings(text, file, CLAMD_SNIPPET)) log.warning(formatDiagnostic(d));
}
