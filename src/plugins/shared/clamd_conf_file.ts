// Which clamd.conf describes the clamd in daemon_sock_path: read by the policy
// (its limits and alerts) and by the spool check (its TemporaryDirectory).

import path from 'node:path';
import { clamdConfFor } from '../../lib/clamd_conf';
import type { Plugin } from './haraka';
import { relayConfig } from './relay_config';

/** The clamd.conf in force (absolute: clamd_config is relative to esets.cfg's folder), or undefined for none. */
export function clamdConfFile(plugin: Plugin): string | undefined {
  const rc = relayConfig(plugin);
  const named = clamdConfFor(rc.config.clamd_config, rc.config.daemon_sock_path);
  return named ? path.resolve(path.dirname(rc.file), named) : undefined;
}
