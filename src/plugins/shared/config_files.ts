// Reads esets.cfg and its user_config file into the configuration the relay
// runs with. Shared by the launcher (checks before Haraka starts) and the
// plugins (load and reload).

import fs from 'node:fs';
import path from 'node:path';
import { Diagnostic, hasErrors } from '../../lib/diagnostics';
import { buildConfig } from '../../lib/esets_config';
import { EsetsConfig } from '../../lib/esets_options';
import { parseUserConfig } from '../../lib/user_config';
import { UserSectionIndex } from '../../lib/user_section_index';

export interface RelayConfig {
  /** the agent section: default < [global] < [smtp] < command line */
  config: EsetsConfig;
  /** absolute path of the esets.cfg in force */
  file: string;
  overrides: Partial<EsetsConfig>;
  users?: { file: string; index: UserSectionIndex };
}

export interface LoadResult {
  /** absent when there are errors */
  loaded?: RelayConfig;
  diagnostics: Diagnostic[];
}

/** Never throws: an unexpected exception is an error diagnostic, so a reload cannot take the relay down. */
export function loadConfigFiles(file: string, overrides: Partial<EsetsConfig>): LoadResult {
  return guardLoad(file, () => load(file, overrides));
}

/** Runs a load; an exception becomes an error naming the file (callers keep what they had). */
export function guardLoad(file: string, run: () => LoadResult): LoadResult {
  try {
    return run();
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    return { diagnostics: [{ severity: 'error', file, message: `cannot load the configuration: ${e.name}: ${e.message}` }] };
  }
}

function load(file: string, overrides: Partial<EsetsConfig>): LoadResult {
  const diagnostics: Diagnostic[] = [];
  const text = readText(file, diagnostics);
  if (text === undefined) return { diagnostics };

  const result = buildConfig(text, file, overrides);
  diagnostics.push(...result.diagnostics);

  let users: RelayConfig['users'];
  if (result.config.user_config) {
    const usersFile = path.resolve(path.dirname(file), result.config.user_config);
    const usersText = readText(usersFile, diagnostics);
    if (usersText !== undefined) {
      const parsed = parseUserConfig(usersText, usersFile);
      diagnostics.push(...parsed.diagnostics);
      users = { file: usersFile, index: new UserSectionIndex(parsed.userConfig.sections) };
    }
  }
  if (hasErrors(diagnostics)) return { diagnostics };
  return { loaded: { config: result.config, file, overrides, users }, diagnostics };
}

function readText(file: string, diagnostics: Diagnostic[]): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    diagnostics.push({ severity: 'error', file, message: `cannot read: ${(err as Error).message}` });
    return undefined;
  }
}

