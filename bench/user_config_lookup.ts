// How fast a message finds its user section among 10,000 (esets_user_config):
// the index against a first-match linear scan, same answers, one run.
// Run: npm run build && node dist/bench/user_config_lookup.js

import { addressKeys } from '../src/lib/address_keys';
import { parseUserConfig } from '../src/lib/user_config';
import { nullSenderKeys, UserSectionIndex } from '../src/lib/user_section_index';

const SECTIONS = 10_000;
const LOOKUPS = 200_000;

function sectionsText(): string {
  const lines: string[] = [];
  for (let i = 0; i < SECTIONS; i++) {
    switch (i % 5) {
      case 0: lines.push(`[user${i}@dom${i % 500}.example]`, 'action_av_infected = discard'); break;
      case 1: lines.push(`[|sender${i}@partner${i % 300}.example]`, 'action_av_infected = accept'); break;
      case 2: lines.push(`[dom${i % 700}.example]`, 'action_av_notscanned = reject'); break;
      case 3: lines.push(`[dom${i % 400}.example|partner${i % 200}.example]`, 'action_as = scan'); break;
      default: lines.push(`[sub${i}.dom${i % 600}.example]`, 'av_clean_mode = standard');
    }
  }
  return lines.join('\n');
}

function addresses(): [string[], string[]][] {
  const out: [string[], string[]][] = [];
  for (let i = 0; i < 1000; i++) {
    out.push([
      addressKeys(`user${(i * 37) % SECTIONS}`, `mail.dom${i % 900}.example`),
      addressKeys(`sender${(i * 13) % SECTIONS}`, `partner${i % 350}.example`),
    ]);
  }
  return out;
}

function main(): void {
  let t = process.hrtime.bigint();
  const { userConfig, diagnostics } = parseUserConfig(sectionsText(), 'bench.cfg');
  const parseMs = Number(process.hrtime.bigint() - t) / 1e6;
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) throw new Error(errors[0].message);
  t = process.hrtime.bigint();
  const index = new UserSectionIndex(userConfig.sections);
  const indexMs = Number(process.hrtime.bigint() - t) / 1e6;
  const queries = addresses();

  const linear = (r: string[], s: string[]): unknown => userConfig.sections.find((sec) =>
    (sec.rcpt === '' || r.includes(sec.rcpt)) && (sec.sender === '' || s.includes(sec.sender)));
  for (const [r, s] of queries) {
    if (index.match(r, s) !== linear(r, s)) throw new Error('index and linear scan disagree');
  }

  const time = (fn: (r: string[], s: string[]) => unknown, n: number): number => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const [r, s] = queries[i % queries.length];
      fn(r, s);
    }
    return Number(process.hrtime.bigint() - start) / n;
  };
  time((r, s) => index.match(r, s), 20_000); // warm-up
  const indexedNs = time((r, s) => index.match(r, s), LOOKUPS);
  const bounce = nullSenderKeys(false);
  const bounceNs = time((r) => index.match(r, bounce), LOOKUPS);
  const keysNs = time(() => addressKeys('someone', 'mail.dom1.example'), LOOKUPS);
  const linearNs = time(linear, 2_000);

  console.log(`user_config lookup, ${SECTIONS} sections, node ${process.version}`);
  console.log('| step | time |');
  console.log('|---|---|');
  console.log(`| parse the file | ${parseMs.toFixed(1)} ms |`);
  console.log(`| build the index | ${indexMs.toFixed(1)} ms |`);
  console.log(`| lookup, indexed (per message) | ${(indexedNs / 1000).toFixed(2)} µs |`);
  console.log(`| lookup of a bounce (<>), null_sender_matches_sender_sections = no | ${(bounceNs / 1000).toFixed(2)} µs |`);
  console.log(`| address keys (per address) | ${(keysNs / 1000).toFixed(2)} µs |`);
  console.log(`| lookup, linear first-match scan (reference) | ${(linearNs / 1000).toFixed(1)} µs |`);
}

main();
