// The addresses a mail server may deliver an address to, beside the address as
// written. Postfix's defaults rewrite a local part that still holds routing
// once the domain after the last @ is its own: `user%domain` becomes
// user@domain (allow_percent_hack), `site!user` becomes user@site
// (swap_bangpath), and a quoted local part is looked inside
// (resolve_dequoted_address): `"user@domain"@here` goes to user@domain. Each
// rewritten address may be rewritten again. A user section chosen by the
// address as written could then govern mail delivered elsewhere: every reading
// is what the relay must judge (source routes, `@a,@b:user@domain`, are
// dropped by Haraka's parser and never reach the server). resolvedReading is
// the one address Postfix's resolver ends at when every domain on the way is
// its own: the "delivered" address of address_routing = delivered.

/** An address as the relay compares it: its local part (unquoted) and its domain. */
export interface AddressReading {
  local: string;
  domain: string;
}

/** The most readings the relay reads; an address with more is refused (exceedsReadings). */
export const MAX_READINGS = 16;

/** The local part without its quotes and quoted-pair backslashes (what Postfix's resolver looks inside). */
export function dequoted(local: string): string {
  let out = '';
  let quoted = false;
  for (let i = 0; i < local.length; i++) {
    const c = local[i];
    if (c === '"') quoted = !quoted;
    else if (c === '\\' && quoted && i + 1 < local.length) out += local[++i];
    else out += c;
  }
  return out;
}

/** One rewriting step of each kind that applies to `local`: the addresses it may become. */
function rewritten(local: string): AddressReading[] {
  const out: AddressReading[] = [];
  const at = local.lastIndexOf('@');
  if (at >= 0) out.push({ local: local.slice(0, at), domain: local.slice(at + 1) });
  const percent = local.lastIndexOf('%');
  if (percent >= 0) out.push({ local: local.slice(0, percent), domain: local.slice(percent + 1) });
  const bang = local.indexOf('!');
  if (bang >= 0) out.push({ local: local.slice(bang + 1), domain: local.slice(0, bang) });
  return out.filter((r) => r.domain !== '');
}

/**
 * The address as written, then every address the server may rewrite it to
 * (each step applied to each reading), without repeats; at most MAX_READINGS.
 * An address with no routing in its local part has one reading: itself.
 */
export function deliveryReadings(local: string, domain: string): AddressReading[] {
  return collect(local, domain, MAX_READINGS);
}

/** More than MAX_READINGS readings: where such an address goes cannot be judged (the relay refuses it). */
export function exceedsReadings(local: string, domain: string): boolean {
  return collect(local, domain, MAX_READINGS + 1).length > MAX_READINGS;
}

function collect(local: string, domain: string, limit: number): AddressReading[] {
  const first = { local: dequoted(local), domain };
  const seen = new Set<string>([key(first)]);
  const out: AddressReading[] = [first];
  for (let i = 0; i < out.length && out.length < limit; i++) {
    for (const next of rewritten(out[i].local)) {
      const k = key(next);
      if (seen.has(k) || out.length >= limit) continue;
      seen.add(k);
      out.push(next);
    }
  }
  return out;
}

function key(r: AddressReading): string {
  return `${r.local.toLowerCase()}@${r.domain.toLowerCase()}`;
}

/** esets.cfg address_routing: what a recipient or sender whose readings choose different sections gets. */
export type AddressRouting = 'refuse' | 'delivered';
export const ADDRESS_ROUTING = ['refuse', 'delivered'] as const;

/**
 * One step of Postfix's resolver (trivial-rewrite) on a local part whose
 * domain was its own: a quoted local part is looked inside; then it is split
 * at its rightmost `@`, else swapped at its first `!` (site!user, before any
 * %), else split at its rightmost `%`. Undefined: nothing left to resolve.
 */
function resolverStep(local: string): AddressReading | undefined {
  const text = local.length >= 2 && local.startsWith('"') && local.endsWith('"') ? dequoted(local) : local;
  const at = text.lastIndexOf('@');
  if (at >= 0) return { local: text.slice(0, at), domain: text.slice(at + 1) };
  const bang = text.indexOf('!');
  if (bang >= 0) return { local: text.slice(bang + 1), domain: text.slice(0, bang) };
  const percent = text.lastIndexOf('%');
  if (percent >= 0) return { local: text.slice(0, percent), domain: text.slice(percent + 1) };
  return undefined;
}

/**
 * The address Postfix's resolver ends at: it resolves the routing of an
 * address whose domain is its own (`own`; by default every domain, which is
 * what address_routing = delivered assumes) and delivers any other as it
 * stands. A step that would leave an empty domain ends the chain there (the
 * server refuses or bounces such an address). At most MAX_READINGS steps.
 */
export function resolvedReading(local: string, domain: string, own: (domain: string) => boolean = () => true): AddressReading {
  // the address as written is compared unquoted; a step's result is already the resolver's unquoted text
  let current: AddressReading = { local: dequoted(local), domain };
  let text = local;
  for (let i = 0; i < MAX_READINGS && own(current.domain); i++) {
    const next = resolverStep(text);
    if (!next || next.domain === '') break;
    current = next;
    text = next.local;
  }
  return current;
}
