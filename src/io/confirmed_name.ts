// Forward-confirmed reverse DNS: a PTR name counts only when it resolves back
// to the client's address. An unconfirmed name is whatever the owner of the
// address's reverse zone chose, and must not reach a server that grants
// relaying by host name (docs/security.md).

import dns from 'node:dns';
import { CLIENT_NAME_LOOKUP_MS } from '../lib/timeout_budget';
import { validHostname } from '../lib/valid_hostname';

/** what Haraka puts in remote.host when it has no name: never a name */
const HARAKA_PLACEHOLDERS = /^(DNSERROR|NXDOMAIN|Unknown)$/;

/** The PTR name as a host name by Postfix's rule (a dotless `localhost` is one), or undefined. */
function hostName(ptr: string | null | undefined): string | undefined {
  const name = ptr?.replace(/\.$/, '');
  return name && !HARAKA_PLACEHOLDERS.test(name) && validHostname(name) ? name : undefined;
}

function plain(ip: string): string {
  return ip.toLowerCase().replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
}

/** `ptr` if it resolves to `ip` within the bound, else undefined. */
export async function confirmedName(ip: string, ptr: string | null | undefined): Promise<string | undefined> {
  const name = hostName(ptr);
  if (!name) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), CLIENT_NAME_LOOKUP_MS); });
  const lookup = dns.promises.lookup(name, { all: true, verbatim: true })
    .then((addresses) => (addresses.some((a) => plain(a.address) === plain(ip)) ? name : undefined))
    .catch(() => undefined);
  try {
    return await Promise.race([lookup, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A PTR name worth reporting as REVERSE_NAME (Haraka puts DNS failures in remote.host). */
export function reverseName(ptr: string | null | undefined): string | undefined {
  return hostName(ptr);
}
