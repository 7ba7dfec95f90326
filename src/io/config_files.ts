// Reads esets.cfg and its user_config file into the configuration the relay
// runs with. Shared by the launcher (checks before Haraka starts) and the
// plugins (load and reload).

import fs from 'node:fs';
import path from 'node:path';
import { Diagnostic, hasErrors, NamedAt, withNamedAt } from '../lib/diagnostics';
import { buildConfig } from '../lib/esets_config';
import { UNSCANNED_PASS_OPTIONS, unscannedPassDiagnostics } from '../lib/policy';
import { EsetsConfig, OptionName } from '../lib/esets_options';
import { FileFacts, fileTrustWarnings } from '../lib/file_trust';
import { parseUserConfig } from '../lib/user_config';
import { UserSectionIndex } from '../lib/user_section_index';

/** set by the launcher once it has written the configuration's warnings to stderr: the plugins do not repeat them */
export const WARNED_ENV = 'ESETS_RELAY_CONFIG_WARNED';
/** set by the launcher (its run folder) for Haraka and the workers: absent under `haraka -c` */
export const RUNTIME_ENV = 'ESETS_RELAY_RUNTIME';

/** Whether this process runs under the esets_smtp launcher (else: an operator's `haraka -c`). */
export function underLauncher(): boolean {
  return Boolean(process.env[RUNTIME_ENV]);
}

/** Whether an operator's Haraka runs this process (its bin/haraka, no launcher): `haraka -c`, not a test harness. */
export function underHarakaC(): boolean {
  return !underLauncher() && /^haraka(\.js)?$/i.test(path.basename(process.argv[1] ?? ''));
}

export interface RelayConfig {
  /** the agent section: default < [global] < [smtp] < command line */
  config: EsetsConfig;
  /** absolute path of the esets.cfg in force */
  file: string;
  overrides: Partial<EsetsConfig>;
  /** namedAt: the esets.cfg line (or override) that names the file, for what is said about it */
  users?: { file: string; namedAt: NamedAt; index: UserSectionIndex };
  /** the text of each file it was built from (a worker restarted on a broken edit starts from these) */
  texts: Record<string, string>;
  /** the esets.cfg line of each option set there (for diagnostics that name it) */
  lines: Partial<Record<OptionName, number>>;
}

export interface LoadResult {
  /** absent when there are errors */
  loaded?: RelayConfig;
  diagnostics: Diagnostic[];
}

/**
 * Never throws: an unexpected exception is an error diagnostic, so a reload
 * cannot take the relay down. `saved`: file texts to use instead of the files
 * (a configuration saved earlier), no file read.
 */
export function loadConfigFiles(
  file: string, overrides: Partial<EsetsConfig>, overridesFrom = 'command line', saved?: Record<string, string>,
): LoadResult {
  return guardLoad(file, () => load(file, overrides, overridesFrom, saved));
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

function load(file: string, overrides: Partial<EsetsConfig>, overridesFrom: string, saved?: Record<string, string>): LoadResult {
  const diagnostics: Diagnostic[] = [];
  const texts: Record<string, string> = {};
  const read = (name: string, into: Diagnostic[]): string | undefined => {
    const t = saved ? savedText(saved, name, into) : readText(name, into);
    if (t !== undefined) texts[name] = t;
    return t;
  };
  const text = read(file, diagnostics);
  if (text === undefined) return { diagnostics };

  const result = buildConfig(text, file, overrides);
  diagnostics.push(...result.diagnostics);

  let users: RelayConfig['users'];
  if (result.config.user_config) {
    const usersFile = path.resolve(path.dirname(file), result.config.user_config);
    const line = result.lines.user_config;
    const namedAt: NamedAt = line === undefined ? { file: overridesFrom } : { file, line };
    // what is said about the file itself (unreadable, or its own file:line) also names the esets.cfg line
    const about: Diagnostic[] = [];
    const usersText = read(usersFile, about);
    if (usersText !== undefined) {
      const facts = saved ? undefined : fileFacts(usersFile);
      if (facts) diagnostics.push(...fileTrustWarnings('user_config', facts, namedAt));
      const parsed = parseUserConfig(usersText, usersFile);
      about.push(...parsed.diagnostics);
      users = { file: usersFile, namedAt, index: new UserSectionIndex(parsed.userConfig.sections) };
      for (const section of parsed.userConfig.sections) {
        // a section that changes what passes unscanned, as its messages run (over the agent section)
        if (!UNSCANNED_PASS_OPTIONS.some((key) => key in section.settings)) continue;
        const effective = { ...result.config, ...section.settings, ...overrides };
        about.push(...unscannedPassDiagnostics(effective, usersFile, { action_av_notscanned: section.line }, section.name));
      }
    }
    diagnostics.push(...withNamedAt(about, usersFile, 'user_config', namedAt));
  }
  if (hasErrors(diagnostics)) return { diagnostics };
  return { loaded: { config: result.config, file, overrides, users, texts, lines: result.lines }, diagnostics };
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

function savedText(saved: Record<string, string>, file: string, diagnostics: Diagnostic[]): string | undefined {
  if (Object.hasOwn(saved, file)) return saved[file];
  diagnostics.push({ severity: 'error', file, message: 'not in the saved configuration' });
  return undefined;
}

function readText(file: string, diagnostics: Diagnostic[]): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    diagnostics.push({ severity: 'error', file, message: `cannot read: ${(err as Error).message}` });
    return undefined;
  }
}

