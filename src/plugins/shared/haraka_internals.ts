// The gate of every module that wraps Haraka's connection internals
// (client_input, own_replies): they rely on Haraka 3's connection.js, so each
// wraps a connection only where the Haraka in use is version 3 and the
// connection has the methods it replaces; elsewhere it warns once and leaves
// Haraka as it is.

import { harakaInUse } from '../../io/haraka_version';
import type { Connection } from './haraka';

let harakaMajor: number | undefined | null = null;

/** Haraka's major version, from its package.json (io/haraka_version); undefined where it cannot be read. */
export function harakaVersionMajor(): number | undefined {
  if (harakaMajor === null) harakaMajor = harakaInUse()?.major;
  return harakaMajor;
}

export interface Wrapper<T> {
  /** the connection note that marks a connection as wrapped */
  note: string;
  /** the connection as the wrapper's view of Haraka's internals, or undefined where it lacks them */
  internals(connection: Connection): T | undefined;
  /** what is not done where nothing is wrapped (the warning's start) */
  notDone: string;
  /** the internals it needs, for the warning */
  needs: string;
}

const warned = new Set<string>();

/**
 * The internals of `connection` to wrap, once per connection: undefined where it is wrapped already, or where
 * Haraka is not version 3 or the connection lacks what the wrapper needs (then one warning per wrapper).
 */
export function toWrap<T>(connection: Connection, wrapper: Wrapper<T>, warn: (msg: string) => void): T | undefined {
  if (connection.notes[wrapper.note]) return undefined;
  const conn = wrapper.internals(connection);
  const major = harakaVersionMajor();
  if (!conn || major !== 3) {
    if (!warned.has(wrapper.note)) {
      warned.add(wrapper.note);
      warn(`${wrapper.notDone}: Haraka ${major ?? 'of unknown version'} is not the Haraka 3 this relay wraps`
        + (conn ? '' : ` (its connection lacks ${wrapper.needs})`));
    }
    return undefined;
  }
  connection.notes[wrapper.note] = true;
  return conn;
}
