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

/**
 * The longest parent_id chain (steps from a section to its farthest ancestor). A bound keeps
 * resolution cheap whatever the file holds; a deeper chain is an error naming the link.
 */
export const MAX_PARENT_DEPTH = 100;

/** The depth of a section in or under a parent_id cycle, or deeper than MAX_PARENT_DEPTH: already reported. */
const BROKEN = Infinity;

/** Options that let a message through unscanned or despite its verdict. */
const AV_ACCEPT_OPTIONS = ['action_av', 'action_av_infected', 'action_av_notscanned', 'action_av_deleted'] as const;

export function parseUserConfig(text: string, file: string): { userConfig: UserConfig; diagnostics: Diagnostic[] } {
  const parsed = parseEsetsCfg(text, file);
  const diagnostics = [...parsed.diagnostics];
  const byName = new Map<string, CfgSection>();
  for (const section of parsed.sections) {
    if (byName.has(section.name.toLowerCase())) {
      diagnostics.push({
        severity: 'warning', file, line: section.line,
        message: `section [${section.name}] appears again (first at line ${byName.get(section.name.toLowerCase())!.line}); `
          + 'both are kept, the first one matches first',
      });
      continue;
    }
    byName.set(section.name.toLowerCase(), section);
  }

  const parents = parentLinks(parsed.sections, byName, file, diagnostics);
  const depths = inheritanceDepths(parsed.sections, parents, file, diagnostics);
  const own = new Map(parsed.sections.map((s) => [s, settingsOf(s, file, diagnostics)]));
  // ancestors before descendants, so each section needs only its parent's result (no recursion)
  const resolved = new Map<CfgSection, Partial<EsetsConfig>>();
  const byDepth = parsed.sections.filter((s) => depths.get(s) !== BROKEN).sort((a, b) => depths.get(a)! - depths.get(b)!);
  for (const section of byDepth) {
    const parent = parents.get(section)?.section;
    resolved.set(section, { ...(parent ? resolved.get(parent) : undefined), ...own.get(section)! });
  }

  const sections: UserSection[] = parsed.sections.map((section) => {
    const bar = section.name.indexOf('|');
    const rcpt = bar < 0 ? section.name : section.name.slice(0, bar);
    const sender = bar < 0 ? '' : section.name.slice(bar + 1);
    return {
      name: section.name,
      rcpt: rcpt.trim() ? normalizeAddressOrDomain(rcpt) : '',
      sender: sender.trim() ? normalizeAddressOrDomain(sender) : '',
      line: section.line,
      // a broken chain is an error already: its own settings are enough to go on checking
      settings: resolved.get(section) ?? own.get(section)!,
    };
  });
  parsed.sections.forEach((section, i) => {
    const warning = forgeableAccept(sections[i], section, parents, own, file);
    if (warning) diagnostics.push(warning);
  });
  return { userConfig: { file, sections }, diagnostics };
}

interface ParentLink {
  section: CfgSection;
  /** the parent_id line */
  line: number;
}

/** Each section's parent; a name that matches no section is an error (the section then inherits nothing). */
function parentLinks(
  sections: readonly CfgSection[], byName: Map<string, CfgSection>, file: string, diagnostics: Diagnostic[],
): Map<CfgSection, ParentLink> {
  const links = new Map<CfgSection, ParentLink>();
  for (const section of sections) {
    const entry = section.entries.find((e) => e.key === PARENT);
    if (!entry) continue;
    const parent = byName.get(entry.value.toLowerCase());
    if (parent) {
      links.set(section, { section: parent, line: entry.line });
    } else {
      diagnostics.push({
        severity: 'error', file, line: entry.line, key: PARENT,
        message: `[${section.name}] parent_id "${entry.value}" names no section of this file`,
      });
    }
  }
  return links;
}

/**
 * Steps from each section to its farthest ancestor, or BROKEN. Iterative: each section joins one
 * walk up its chain, so the work is linear in the number of sections whatever the chains.
 */
function inheritanceDepths(
  sections: readonly CfgSection[], parents: Map<CfgSection, ParentLink>, file: string, diagnostics: Diagnostic[],
): Map<CfgSection, number> {
  const depths = new Map<CfgSection, number>();
  for (const start of sections) {
    const walk: CfgSection[] = [];
    const onWalk = new Set<CfgSection>();
    let top: CfgSection | undefined = start;
    // bounded: a section already on this walk or already measured stops it
    while (top && !depths.has(top) && !onWalk.has(top)) {
      walk.push(top);
      onWalk.add(top);
      top = parents.get(top)?.section;
    }
    let above = top === undefined ? -1 : depths.get(top) ?? BROKEN;
    if (top && onWalk.has(top)) {
      const last = walk[walk.length - 1];
      const cycle = [...walk.slice(walk.indexOf(top)), top];
      diagnostics.push({
        severity: 'error', file, line: parents.get(last)!.line, key: PARENT, message: `parent_id cycle: ${chainText(cycle)}`,
      });
      above = BROKEN;
    }
    for (let i = walk.length - 1; i >= 0; i--) {
      const section = walk[i];
      if (above === BROKEN) {
        depths.set(section, BROKEN);
        continue;
      }
      const depth = above + 1;
      if (depth > MAX_PARENT_DEPTH) {
        const link = parents.get(section)!;
        diagnostics.push({
          severity: 'error', file, line: link.line, key: PARENT,
          message: `[${section.name}] parent_id "${link.section.name}" is step ${depth} of a parent_id chain: `
            + `at most ${MAX_PARENT_DEPTH} are allowed`,
        });
        depths.set(section, BROKEN);
        above = BROKEN;
        continue;
      }
      depths.set(section, depth);
      above = depth;
    }
  }
  return depths;
}

/** `[a] -> [b] -> [a]`, shortened in the middle when long (a cycle may hold thousands of sections). */
function chainText(chain: readonly CfgSection[]): string {
  const names = chain.map((s) => `[${s.name}]`);
  if (names.length <= 8) return names.join(' -> ');
  return [...names.slice(0, 4), `... (${names.length - 7} more)`, ...names.slice(-3)].join(' -> ');
}

/**
 * A section chosen by the sender that lets mail through unscanned or despite its verdict: MAIL FROM
 * is not authenticated, so any client can pick that section by forging it.
 */
function forgeableAccept(
  section: UserSection, cfg: CfgSection, parents: Map<CfgSection, ParentLink>, own: Map<CfgSection, Partial<EsetsConfig>>, file: string,
): Diagnostic | undefined {
  if (!section.sender) return undefined;
  const accepting = AV_ACCEPT_OPTIONS.filter((key) => section.settings[key] === 'accept');
  if (!accepting.length) return undefined;
  const named = accepting.map((key) => {
    const from = setter(cfg, key, parents, own);
    const line = from.entries.find((e) => e.key === key)?.line;
    return from === cfg ? `${key} = accept` : `${key} = accept (from [${from.name}], line ${line})`;
  });
  return {
    severity: 'warning', file, line: section.line, key: accepting[0],
    message: `[${section.name}] sets ${named.join(', ')}: sender addresses are not authenticated: a forged MAIL FROM chooses this section`,
  };
}

/** The section of the chain that sets key itself (the chain is resolved: at most MAX_PARENT_DEPTH steps). */
function setter(
  section: CfgSection, key: keyof EsetsConfig, parents: Map<CfgSection, ParentLink>, own: Map<CfgSection, Partial<EsetsConfig>>,
): CfgSection {
  let at = section;
  for (let step = 0; step <= MAX_PARENT_DEPTH && own.get(at)![key] === undefined; step++) {
    const parent = parents.get(at)?.section;
    if (!parent) break;
    at = parent;
  }
  return at;
}

/** Only the options the section sets, checked as in [smtp] (agent-only options are refused). */
function settingsOf(section: CfgSection, file: string, diagnostics: Diagnostic[]): Partial<EsetsConfig> {
  const entries = section.entries.filter((e) => e.key !== PARENT);
  return applySection({ ...DEFAULT_CONFIG }, { ...section, entries }, ['common'], file, diagnostics);
}
