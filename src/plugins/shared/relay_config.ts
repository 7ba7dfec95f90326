// Loads the effective esets.cfg once per process for every esets_* plugin.
// config/esets_relay.ini names the file and carries the launcher's
// command-line overrides, so `haraka -c` and `esets_smtp` read the same thing.

import fs from 'node:fs';
import path from 'node:path';
import { formatDiagnostic, hasErrors, Diagnostic } from '../../lib/diagnostics';
import { buildConfig } from '../../lib/esets_config';
import { EsetsConfig, isOptionName, parseOptionValue } from '../../lib/esets_options';
import type { Plugin } from './haraka';

export interface RelayConfig {
  config: EsetsConfig;
  /** absolute path of the esets.cfg in force */
  file: string;
}

interface RelayIni {
  main?: { esets_cfg?: string };
  overrides?: Record<string, string | number | boolean>;
}

let current: RelayConfig | undefined;

export function configDir(): string {
  return path.join(process.env.HARAKA ?? process.cwd(), 'config');
}

/** Drops the loaded config so the next call reads esets.cfg again. */
export function forgetRelayConfig(): void {
  current = undefined;
}

/** The effective config; throws (stopping Haraka's start) when esets.cfg has errors. */
export function relayConfig(plugin: Plugin): RelayConfig {
  if (current) return current;
  const ini = plugin.config.get('esets_relay.ini') as RelayIni;
  const file = path.resolve(configDir(), ini.main?.esets_cfg ?? 'esets.cfg');
  const diagnostics: Diagnostic[] = [];

  const overrides: Partial<EsetsConfig> = {};
  for (const [key, raw] of Object.entries(ini.overrides ?? {})) {
    // haraka-config turns numeric-looking values into numbers
    const parsed = isOptionName(key) ? parseOptionValue(key, String(raw)) : undefined;
    if (!parsed?.ok) {
      diagnostics.push({ severity: 'error', file: 'esets_relay.ini', key, message: `override '${key} = ${raw}' is not valid` });
      continue;
    }
    (overrides as Record<string, unknown>)[key] = parsed.value;
  }

  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  const result = buildConfig(text, file, overrides);
  diagnostics.push(...result.diagnostics);
  for (const d of diagnostics) {
    if (d.severity === 'warning') plugin.logwarn(formatDiagnostic(d));
  }
  if (hasErrors(diagnostics)) {
    throw new Error(diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic).join('\n'));
  }
  current = { config: result.config, file };
  return current;
}
