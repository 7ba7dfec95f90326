// Postfix's rule for a host name (util/valid_hostname.c, 3.7), which its smtpd
// applies to a client's reverse-DNS name and to XCLIENT NAME: a name without a
// dot (`localhost` from /etc/hosts) is a name, an all-numeric one is not.

/** RFC 1035 limits, as Postfix has them (VALID_HOSTNAME_LEN, VALID_LABEL_LEN) */
const MAX_NAME = 255;
const MAX_LABEL = 63;

/**
 * Whether Postfix's smtpd takes `name` as a host name: labels of letters,
 * digits, `_` (Postfix allows it: "grr..") and inner hyphens, each 1..63
 * characters, separated by single dots (none first or last), at most 255
 * characters in all, and not digits and dots only.
 */
export function validHostname(name: string): boolean {
  if (!name || name.length > MAX_NAME) return false;
  let nonNumeric = false;
  for (const label of name.split('.')) {
    if (!label.length || label.length > MAX_LABEL) return false;
    if (!/^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?$/.test(label)) return false;
    if (/[^0-9]/.test(label)) nonNumeric = true;
  }
  return nonNumeric;
}
