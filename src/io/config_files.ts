// Reads esets.cfg and its user_config file into the configuration the relay
// runs with. Shared by the launcher (checks before Haraka starts) and the
// plugins (load and reload).

import fs from 'node:fs';
import path from 'node:path';
import { Diagnostic, hasErrors } from '../lib/diagnostics';
import { buildConfig } from '../lib/esets_config';
import { EsetsConfig } from '../lib/esets_options';
import { FileFacts, fileTrustWarnings, NamedAt } from '../lib/file_trust';
import { parseUserConfig } from '../lib/user_config';
import { UserSectionIndex } from '../lib/user_section_index';

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
export function loadConfigFiles(file: string, overrides: Partial<EsetsConfig>, overridesFrom = 'command line'): LoadResult {
  return guardLoad(file, () => load(file, overrides, overridesFrom));
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

function load(file: string, overrides: Partial<EsetsConfig>, overridesFrom: string): LoadResult {
  const diagnostics: Diagnostic[] = [];
  const text = readText(file, diagnostics);
  if (text === undefined) return { diagnostics };

  const result = buildConfig(text, file, overrides);
  diagnostics.push(...result.diagnostics);

  let users: RelayConfig['users'];
  if (result.config.user_config) {
    const usersFile = path.resolve(path.dirname(file), result.config.user_config);
    const line = result.lines.user_config;
    const namedAt: NamedAt = line === undefined ? { file: overridesFrom } : { file, line };
    const named = `(user_config, named at ${namedAt.line === undefined ? namedAt.file : `${namedAt.file}:${namedAt.line}`})`;
    const usersText = readText(usersFile, diagnostics, named);
    if (usersText !== undefined) {
      const facts = fileFacts(usersFile);
      if (facts) diagnostics.push(...fileTrustWarnings('user_config', facts, namedAt));
      const parsed = parseUserConfig(usersText, usersFile);
      diagnostics.push(...parsed.diagnostics);
      users = { file: usersFile, index: new UserSectionIndex(parsed.userConfig.sections) };
    }
  }
  if (hasErrors(diagnostics)) return { diagnostics };
  return { loaded: { config: result.config, file, overrides, users }, diagnostics };
}

/** What fileTrustWarnings needs; undefined when a stat fails (the read has already said why). */
function fileFacts(file: string): FileFacts | undefined {
  try {
    const link = fs.lstatSync(file);
    const symlinkTarget = link.isSymbolicLink() ? fs.readlinkSync(file) : undefined;
    return {
      path: file,
      symlinkTarget,
      mode: (symlinkTarget === undefined ? link : fs.statSync(file)).mode,
      dirMode: fs.statSync(path.dirname(file)).mode,
    };
  } catch {
    return undefined;
  }
}

function readText(file: string, diagnostics: Diagnostic[], named?: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    diagnostics.push({ severity: 'error', file, message: `cannot read: ${(err as Error).message}${named ? ` ${named}` : ''}` });
    return undefined;
  }
}

