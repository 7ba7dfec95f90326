// The SASL login name of an AUTH exchange the server answered 235: what the
// relay hands the server again (XCLIENT LOGIN=) when it must reopen the
// session. Read from the client's own responses, only for mechanisms that
// carry the name in clear; anything else gives no name (the client is then
// told to authenticate again, never carried over as someone else).

export interface AuthExchange {
  /** the mechanism, upper case */
  mechanism: string;
  /** the client's responses in order, the initial response (AUTH MECH RESPONSE) first */
  responses: string[];
}

/** `AUTH MECH [initial-response]` as an exchange just begun. */
export function beginExchange(line: string): AuthExchange {
  const [, mechanism = '', initial] = line.trim().split(/\s+/);
  // "=" is an empty initial response (RFC 4954)
  return { mechanism: mechanism.toUpperCase(), responses: initial === undefined ? [] : [initial === '=' ? '' : initial] };
}

function decode(b64: string | undefined): string | undefined {
  if (b64 === undefined || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return undefined;
  return Buffer.from(b64, 'base64').toString('utf8');
}

/** A name XCLIENT can carry: no control characters (xtext encodes the rest). */
function usable(name: string | undefined): string | undefined {
  return name && !/[\x00-\x1f\x7f]/.test(name) ? name : undefined;
}

/**
 * The login name the exchange authenticated: PLAIN's authcid (an exchange
 * that asks to act as another identity, an authzid that differs, gives
 * none: the server granted that identity, and it is not the relay's to
 * repeat), LOGIN's user name, CRAM-MD5's user.
 */
export function saslLoginName(exchange: AuthExchange): string | undefined {
  const first = decode(exchange.responses[0]);
  if (first === undefined) return undefined;
  switch (exchange.mechanism) {
    case 'PLAIN': {
      const parts = first.split('\0');
      if (parts.length !== 3) return undefined;
      const [authzid, authcid] = parts;
      return authzid && authzid !== authcid ? undefined : usable(authcid);
    }
    case 'LOGIN':
      return usable(first);
    case 'CRAM-MD5': {
      const at = first.lastIndexOf(' ');
      return at > 0 ? usable(first.slice(0, at)) : undefined;
    }
    default:
      return undefined;
  }
}
