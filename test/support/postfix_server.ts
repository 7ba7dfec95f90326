// A private real Postfix 3.7 as the MAIL SERVER behind the relay, configured as
// issue 10's review had it: relaying allowed for its own network only
// (mynetworks = 127.0.0.1/32; the relay's clients come from 127.0.0.2/.3),
// XCLIENT authorized for the relay (127.0.0.1) unless told otherwise, Postfix's
// default smtpd_forbid_bare_newline. Mail for relay_domains (example.org) and
// anything it relays is delivered to `deliverTo` (a recording sink), so a test
// can count and read exactly what Postfix delivered. `settle()` waits (bounded)
// until every smtpd session has ended and the queue is empty, so "nothing was
// delivered" is a fact and not a guess.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { baseMainCf, PostfixInstance, startPostfixInstance } from './postfix';

export interface PostfixServerOptions {
  /** port of the server Postfix delivers everything to (127.0.0.1) */
  deliverTo: number;
  /** smtpd_authorized_xclient_hosts = 127.0.0.1 (default); false: nobody may use XCLIENT, Postfix does not offer it */
  xclient?: boolean;
  /** smtpd_authorized_xforward_hosts = 127.0.0.1 (default false) */
  xforward?: boolean;
  /** domains Postfix accepts mail for from anyone (relay_domains); default example.org */
  relayDomains?: string[];
  /** check_helo_access regexp: table lines, in smtpd_helo_restrictions (e.g. `/^bad\.example$/ REJECT 5.7.1 no`) */
  heloAccess?: string[];
  /**
   * check_client_access texthash: table lines (client hostname or address → action),
   * in smtpd_relay_restrictions before reject_unauth_destination
   */
  clientAccess?: string[];
  /**
   * SASL AUTH (PLAIN, LOGIN) for these users (name → password), from a sasldb
   * of the instance's own (Cyrus SASL, auxprop sasldb; saslpasswd2 from
   * sasl2-bin); an authenticated client may relay (permit_sasl_authenticated)
   */
  sasl?: Record<string, string>;
  /** more main.cf settings (win over the above) */
  main?: Record<string, string>;
}

export interface PostfixServer extends PostfixInstance {
  /** the length of the maillog now: pass it to logSince() to read only what follows */
  mark(): number;
  logSince(mark: number): string;
  /**
   * Resolves once every smtpd session has ended (as many "disconnect from" as
   * "connect from" lines) and the queue holds no message (delivered or
   * removed); rejects after `ms` with the log.
   */
  settle(ms?: number): Promise<void>;
}

const QUEUES = ['maildrop', 'incoming', 'active', 'deferred', 'hold'];

/** the realm of the sasldb users (smtpd_sasl_local_domain): a client authenticates with the bare name */
const SASL_REALM = 'sasl.server.test';

/** Cyrus SASL reads etc/sasl/smtpd.conf (smtpd_sasl_path = smtpd, cyrus_sasl_config_path) */
function saslSettings(etc: string): Record<string, string> {
  return {
    smtpd_sasl_auth_enable: 'yes',
    smtpd_sasl_type: 'cyrus',
    smtpd_sasl_path: 'smtpd',
    cyrus_sasl_config_path: path.join(etc, 'sasl'),
    smtpd_sasl_local_domain: SASL_REALM,
    smtpd_sasl_security_options: 'noanonymous',
  };
}

function writeSasldb(etc: string, users: Record<string, string>): void {
  const db = path.join(etc, 'sasldb2');
  fs.mkdirSync(path.join(etc, 'sasl'));
  fs.writeFileSync(path.join(etc, 'sasl', 'smtpd.conf'),
    ['pwcheck_method: auxprop', 'auxprop_plugin: sasldb', 'mech_list: PLAIN LOGIN', `sasldb_path: ${db}`, ''].join('\n'));
  for (const [user, password] of Object.entries(users)) {
    execFileSync('saslpasswd2', ['-p', '-c', '-f', db, '-u', SASL_REALM, user], { input: password, stdio: ['pipe', 'ignore', 'inherit'] });
  }
  // smtpd runs as mail_owner and reads it
  execFileSync('chown', ['postfix', db]);
  fs.chmodSync(db, 0o600);
}

export async function startPostfixServer(opts: PostfixServerOptions): Promise<PostfixServer> {
  const sink = `[127.0.0.1]:${opts.deliverTo}`;
  const files: Record<string, string> = {
    helo_access: `${(opts.heloAccess ?? []).join('\n')}\n`,
    client_access: `${(opts.clientAccess ?? []).join('\n')}\n`,
  };
  const settings = (etc: string): Record<string, string> => ({
    mynetworks: '127.0.0.1/32',
    relay_domains: (opts.relayDomains ?? ['example.org']).join(' '),
    smtpd_relay_restrictions: `permit_mynetworks, ${opts.sasl ? 'permit_sasl_authenticated, ' : ''}`
      + `check_client_access texthash:${etc}/client_access, reject_unauth_destination`,
    ...(opts.sasl ? saslSettings(etc) : {}),
    smtpd_helo_restrictions: `check_helo_access regexp:${etc}/helo_access`,
    smtpd_authorized_xclient_hosts: opts.xclient === false ? '' : '127.0.0.1',
    smtpd_authorized_xforward_hosts: opts.xforward ? '127.0.0.1' : '',
    // everything leaves through the recording sink: relayed mail, bounces, double bounces
    default_transport: `smtp:${sink}`,
    relay_transport: `relay:${sink}`,
    myorigin: 'server.test',
    biff: 'no',
    ...opts.main,
  });
  const pf = await startPostfixInstance(
    (dir, etc) => [...baseMainCf(dir, 'mx.server.test', 'server.test'), ...Object.entries(settings(etc)).map(([k, v]) => `${k} = ${v}`)],
    files,
    undefined,
    opts.sasl ? (_dir, etc) => writeSasldb(etc, opts.sasl!) : undefined,
  );
  const mark = (): number => Buffer.byteLength(pf.log());
  const logSince = (at: number): string => Buffer.from(pf.log()).subarray(at).toString();
  const queued = (): string[] => {
    const found: string[] = [];
    const walk = (d: string): void => {
      if (!fs.existsSync(d)) return;
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(d, e.name));
        else found.push(path.join(d, e.name));
      }
    };
    for (const q of QUEUES) walk(path.join(pf.dir, 'queue', q));
    return found;
  };
  const settle = async (ms = 15_000): Promise<void> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const log = pf.log();
      const connects = (log.match(/ postfix\/smtpd\[\d+\]: connect from /g) ?? []).length;
      const disconnects = (log.match(/ postfix\/smtpd\[\d+\]: disconnect from /g) ?? []).length;
      const left = queued();
      if (connects === disconnects && !left.length) return;
      if (Date.now() > deadline) {
        throw new Error(`postfix did not settle within ${ms} ms `
          + `(${connects} connects, ${disconnects} disconnects, queued: ${left.join(' ')}):\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { ...pf, mark, logSince, settle };
}

/** The client part of Postfix's log lines: `name[addr]` of each smtpd line about a client. */
export function smtpdClients(log: string): string[] {
  return [...log.matchAll(/ postfix\/smtpd\[\d+\]: (?:[0-9A-F]+: client=|NOQUEUE: \w+: \w+ from |connect from )([^\s,:]+\[[\d.]+\])/g)].map((m) => m[1]);
}
