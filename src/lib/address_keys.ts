// The manual's address comparison: "n@d.e.f" is compared as "n@d.e.f",
// "d.e.f", "e.f", "f". Addresses and section names are normalised the same
// way: lower case, no quotes around the local part, no trailing dot, IDN
// domains in their ASCII (punycode) form.

import { domainToASCII } from 'node:url';

export function normalizeDomain(domain: string): string {
  const trimmed = domain.trim().replace(/\.+$/, '').toLowerCase();
  if (/^[\x20-\x7e]*$/.test(trimmed)) return trimmed;
  return domainToASCII(trimmed) || trimmed;
}

export function normalizeLocalPart(local: string): string {
  let text = local.trim();
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) text = text.slice(1, -1).replace(/\\(.)/g, '$1');
  return text.toLowerCase();
}

/** An address or a domain (a section name part) in its normalised form. */
export function normalizeAddressOrDomain(text: string): string {
  const at = text.lastIndexOf('@');
  if (at < 0) return normalizeDomain(text);
  return `${normalizeLocalPart(text.slice(0, at))}@${normalizeDomain(text.slice(at + 1))}`;
}

/**
 * The keys an address is compared under, most specific first; an empty list
 * for a missing address (the null sender <>), which matches any section part.
 */
export function addressKeys(local: string | null | undefined, domain: string | null | undefined): string[] {
  if (!domain) return local ? [normalizeLocalPart(local)] : [];
  const host = normalizeDomain(domain);
  const labels = host.split('.').filter(Boolean);
  const keys = local ? [`${normalizeLocalPart(local)}@${host}`] : [];
  for (let i = 0; i < labels.length; i++) keys.push(labels.slice(i).join('.'));
  return keys;
}
