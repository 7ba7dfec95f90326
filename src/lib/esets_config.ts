// The effective configuration: built-in default < [global] < [smtp] < command
// line. Pure: the caller reads the file and decides what to do with errors.

import { Diagnostic, hasErrors } from './diagnostics';
import { CfgSection, parseEsetsCfg } from './esets_cfg_parser';
import {
  DEFAULT_CONFIG, ESETS_DAEMON_KEYS, EsetsConfig, OPTION_SPECS, OptionName, OptionScope,
  isOptionName, parseOptionValue,
} from './esets_options';
import { unscannedPassDiagnostics } from './policy';
import { didYouMean } from './suggestions';
import { budgetDiagnostics } from './timeout_budget';

export const AGENT_SECTION = 'smtp';
export const GLOBAL_SECTION = 'global';

export interface ConfigResult {
  config: EsetsConfig;
  diagnostics: Diagnostic[];
  ok: boolean;
  /** the line that set each option in force from the file (absent: default or override) */
  lines: Partial<Record<OptionName, number>>;
}

const SECTION_SCOPES: Record<string, readonly OptionScope[]> = {
  [GLOBAL_SECTION]: ['common', 'relay', 'global'],
  [AGENT_SECTION]: ['agent', 'common', 'relay'],
};

/** Where an option of each scope may be written, for the warning about one written elsewhere. */
const SCOPE_HOME: Record<OptionScope, string> = {
  agent: '[smtp] of esets.cfg',
  common: '[global] or [smtp]',
  relay: '[smtp] or [global] of esets.cfg',
  global: '[global]',
};

export function buildConfig(text: string, file: string, overrides: Partial<EsetsConfig> = {}): ConfigResult {
  const parsed = parseEsetsCfg(text, file);
  const diagnostics = [...parsed.diagnostics, ...repeatedSections(parsed.sections, file)];
  const config: EsetsConfig = { ...DEFAULT_CONFIG };
  const lines: ConfigResult['lines'] = {};

  for (const name of [GLOBAL_SECTION, AGENT_SECTION]) {
    for (const section of parsed.sections.filter((s) => s.name.toLowerCase() === name)) {
      const applied = applySection(config, section, SECTION_SCOPES[name], file, diagnostics);
      for (const entry of section.entries) if (entry.key in applied) lines[entry.key as OptionName] = entry.line;
    }
  }
  Object.assign(config, overrides);
  for (const key of Object.keys(overrides)) delete lines[key as OptionName];
  diagnostics.push(...budgetDiagnostics(config, file, lines.timeout_message));
  diagnostics.push(...unscannedPassDiagnostics(config, file, lines));

  return { config, diagnostics, ok: !hasErrors(diagnostics), lines };
}

/**
 * A section written twice is read as one (its options in file order, the last value of a key winning):
 * said at the second header, and a key the two both set is a repeated key, as within one section.
 */
function repeatedSections(sections: readonly CfgSection[], file: string): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const first = new Map<string, { line: number; keys: Map<string, number> }>();
  for (const section of sections) {
    const name = section.name.toLowerCase();
    const seen = first.get(name);
    if (!seen) {
      first.set(name, { line: section.line, keys: new Map(section.entries.map((e) => [e.key, e.line])) });
      continue;
    }
    diagnostics.push({
      severity: 'warning', file, line: section.line,
      message: `section [${section.name}] repeated (first at line ${seen.line}); both are read, in file order`,
    });
    for (const entry of section.entries) {
      const earlier = seen.keys.get(entry.key);
      if (earlier !== undefined) {
        diagnostics.push({
          severity: 'warning', file, line: entry.line, key: entry.key,
          message: `option '${entry.key}' repeated in [${section.name}] (first at line ${earlier}); the last value is used`,
        });
      }
      seen.keys.set(entry.key, entry.line);
    }
  }
  return diagnostics;
}

/** Applies one section's entries to config, reporting unknown keys and bad values; returns what it set. */
export function applySection(
  config: EsetsConfig,
  section: CfgSection,
  allowed: readonly OptionScope[],
  file: string,
  diagnostics: Diagnostic[],
): Partial<EsetsConfig> {
  const applied: Record<string, unknown> = {};
  for (const entry of section.entries) {
    const { key, line } = entry;
    if (!isOptionName(key)) {
      if (section.name.toLowerCase() === GLOBAL_SECTION && ESETS_DAEMON_KEYS.has(key)) continue;
      // suggested only among the options this section may hold
      const hint = didYouMean(key, (Object.keys(OPTION_SPECS) as OptionName[]).filter((n) => allowed.includes(OPTION_SPECS[n].scope)));
      diagnostics.push({ severity: 'warning', file, line, key, message: `unknown option '${key}' in [${section.name}] is ignored${hint}` });
      continue;
    }
    const spec = OPTION_SPECS[key];
    if (!allowed.includes(spec.scope)) {
      diagnostics.push({
        severity: 'warning', file, line, key,
        message: `option '${key}' is not valid in [${section.name}] (it belongs in ${SCOPE_HOME[spec.scope]}) and is ignored`,
      });
      continue;
    }
    const parsed = parseOptionValue(key, entry.value);
    if (!parsed.ok) {
      diagnostics.push({
        severity: 'error', file, line, key,
        message: `option '${key}' has invalid value '${entry.value}': expected ${parsed.expected}`,
      });
      continue;
    }
    (config as unknown as Record<string, unknown>)[key] = parsed.value;
    applied[key] = parsed.value;
  }
  return applied as Partial<EsetsConfig>;
}
