// User-specific configuration (esets_smtp(1), USER SPECIFIC CONFIGURATION):
// sections named [rcpt|sender], either part optional, holding policy and
// scanner options, parent_id = "name" to inherit another section's settings.
// The first section in file order whose both parts match wins.

import { Diagnostic } from './diagnostics';
import { CfgSection, parseEsetsCfg } from './esets_cfg_parser';
import { applySection } from './esets_config';
import { DEFAULT_CONFIG, EsetsConfig } from './esets_options';
import { normalizeAddressOrDomain } from './address_keys';

export interface UserSection {
  name: string;
  /** normalised recipient part; '' when the header has none (matches any) */
  rcpt: string;
  /** normalised sender part; '' when the header has none (matches any) */
  sender: string;
  line: number;
  /** this section's settings with its parents' applied first */
  settings: Partial<EsetsConfig>;
}

export interface UserConfig {
  file: string;
  sections: UserSection[];
}

const PARENT = 'parent_id';

export function parseUserConfig(text: string, file: string): { userConfig: UserConfig; diagnostics: Diagnostic[] } {
  const parsed = parseEsetsCfg(text, file);
  const diagnostics = [...parsed.diagnostics];
  const byName = new Map<string, CfgSection>();
  for (const section of parsed.sections) {
    if (byName.has(section.name.toLowerCase())) {
      diagnostics.push({ severity: 'warning', file, line: section.line, message: `section [${section.name}] appears again (first at line ${byName.get(section.name.toLowerCase())!.line}); both are kept, the first one matches first` });
      continue;
    }
    byName.set(section.name.toLowerCase(), section);
  }

  const resolved = new Map<CfgSection, Partial<EsetsConfig>>();
  const resolve = (section: CfgSection, chain: CfgSection[]): Partial<EsetsConfig> => {
    const done = resolved.get(section);
    if (done) return done;
    let inherited: Partial<EsetsConfig> = {};
    const parentEntry = section.entries.find((e) => e.key === PARENT);
    if (parentEntry) {
      const parent = byName.get(parentEntry.value.toLowerCase());
      if (!parent) {
        diagnostics.push({ severity: 'error', file, line: parentEntry.line, key: PARENT, message: `[${section.name}] parent_id "${parentEntry.value}" names no section of this file` });
      } else if (chain.includes(parent) || parent === section) {
        const cycle = [...chain, section, parent].map((s) => `[${s.name}]`).join(' -> ');
        diagnostics.push({ severity: 'error', file, line: parentEntry.line, key: PARENT, message: `parent_id cycle: ${cycle}` });
      } else {
        inherited = resolve(parent, [...chain, section]);
      }
    }
    const own = settingsOf(section, file, diagnostics);
    const settings = { ...inherited, ...own };
    resolved.set(section, settings);
    return settings;
  };

  const sections: UserSection[] = parsed.sections.map((section) => {
    const bar = section.name.indexOf('|');
    const rcpt = bar < 0 ? section.name : section.name.slice(0, bar);
    const sender = bar < 0 ? '' : section.name.slice(bar + 1);
    return {
      name: section.name,
      rcpt: rcpt.trim() ? normalizeAddressOrDomain(rcpt) : '',
      sender: sender.trim() ? normalizeAddressOrDomain(sender) : '',
      line: section.line,
      settings: resolve(section, []),
    };
  });
  return { userConfig: { file, sections }, diagnostics };
}

/** Only the options the section sets, checked as in [smtp] (agent-only options are refused). */
function settingsOf(section: CfgSection, file: string, diagnostics: Diagnostic[]): Partial<EsetsConfig> {
  const entries = section.entries.filter((e) => e.key !== PARENT);
  return applySection({ ...DEFAULT_CONFIG }, { ...section, entries }, ['common'], file, diagnostics);
}
