// esets_smtp does not support STARTTLS and hides it (esets_smtp(1)): the relay
// must see every message in clear to scan it. CHUNKING/BINARYMIME are hidden
// too, so that every message arrives through DATA. And Haraka's INTERNALCMD,
// which lets any local client (no key configured) call the master process's
// functions (shut it down, daemonize it as root), is not a command here.

import constants from 'haraka-constants';
import type { Connection, Next, Plugin } from '../shared/haraka';
import { useShortName } from '../shared/plugin_name';
import { relayAnswer } from '../shared/relay_answer';

const HIDDEN_EXTENSIONS = /^(STARTTLS|CHUNKING|BINARYMIME)\b/i;
const REFUSED_VERBS = new Set(['STARTTLS', 'BDAT']);

export function register(this: Plugin): void {
  useShortName(this);
  // last among capabilities hooks, after the tls plugin has added STARTTLS
  this.register_hook('capabilities', 'hide_extensions', 100);
  // first among unrecognized_command hooks, before the tls plugin upgrades
  this.register_hook('unrecognized_command', 'refuse_verbs', -100);
  this.register_hook('connect_init', 'no_internal_commands', -100);
}

interface InternalCommands {
  cmd_internalcmd?: (this: { respond(code: number, msg: string): void }, line: string) => void;
}

/** Haraka answers INTERNALCMD itself, with no hook: replaced on this connection by its answer to any unknown verb. */
export function no_internal_commands(this: Plugin, next: Next, connection: Connection): void {
  (connection as Connection & InternalCommands).cmd_internalcmd = function refused(): void {
    this.respond(500, 'Unrecognized command');
  };
  next();
}

export function hide_extensions(this: Plugin, next: Next, connection: Connection): void {
  if (connection.capabilities) {
    const hidden = connection.capabilities.filter((c) => HIDDEN_EXTENSIONS.test(c));
    if (hidden.length) {
      connection.capabilities = connection.capabilities.filter((c) => !HIDDEN_EXTENSIONS.test(c));
      connection.results.add(this, { msg: `hidden: ${hidden.join(', ')}` });
    }
  }
  connection.tls.advertised = false;
  next();
}

export function refuse_verbs(this: Plugin, next: Next, connection: Connection, params: string[]): void {
  const verb = String(params[0] ?? '').toUpperCase();
  if (!REFUSED_VERBS.has(verb)) return next();
  connection.results.add(this, { fail: `${verb} refused` });
  next(constants.deny, relayAnswer(connection, { kind: 'command_not_supported', detail: verb }));
}
