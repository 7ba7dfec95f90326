// shared/client_input: the bound on a client's buffered input composes with
// Haraka's own pause/resume (a socket Haraka paused is never resumed by us,
// nor one we hold by Haraka), and an unknown connection is left alone.

import assert from 'node:assert/strict';
import { boundClientInput, INPUT_BOUND } from '../../src/plugins/shared/client_input';
import { stopClientTimer } from '../../src/plugins/shared/client_timeout';
import type { Connection } from '../../src/plugins/shared/haraka';

class FakeSocket {
  paused = false;
  writableLength = 0;
  timeout = 0;
  pause(): void { this.paused = true; }
  resume(): void { this.paused = false; }
  once(): void { /* no drain in these tests */ }
  destroy(): void { /* nothing */ }
  setTimeout(ms: number): void { this.timeout = ms; }
}

/** Haraka's connection as far as client_input goes; a hook "waits": nothing is taken from the buffer. */
function fakeConnection(socket: FakeSocket): Connection & { current_data: Buffer | null; process_data(d: Buffer): void;
  _process_data(): void; client: FakeSocket } {
  const conn = {
    notes: {}, remote: { ip: '127.0.0.1' }, state: 1, current_data: null as Buffer | null, client: socket,
    process_data(d: Buffer): void { this.current_data = this.current_data ? Buffer.concat([this.current_data, d]) : d; },
    _process_data(): void { /* the hook waits */ },
    process_line(): void { /* nothing */ },
    respond(): void { /* nothing */ },
    disconnect(): void { /* nothing */ },
  };
  return conn as unknown as ReturnType<typeof fakeConnection>;
}

const limits = { timeoutClientS: 30, minRate: 0, sessionS: 0 };

describe('client input bound (shared/client_input)', () => {
  it('over 64 KiB buffered the socket is paused, and resumed once back under the bound', () => {
    const socket = new FakeSocket();
    const conn = fakeConnection(socket);
    boundClientInput(conn, limits, () => assert.fail('warned'));
    conn.process_data(Buffer.alloc(INPUT_BOUND / 2, 0x41));
    assert.equal(socket.paused, false);
    conn.process_data(Buffer.alloc(INPUT_BOUND / 2 + 1, 0x41));
    assert.equal(socket.paused, true);
    conn.current_data = Buffer.alloc(10);
    conn._process_data();
    assert.equal(socket.paused, false);
    stopClientTimer(conn);
  });

  it("a socket Haraka paused stays paused when we release it; one we hold stays paused when Haraka resumes", () => {
    const socket = new FakeSocket();
    const conn = fakeConnection(socket);
    boundClientInput(conn, limits, () => assert.fail('warned'));
    conn.process_data(Buffer.alloc(INPUT_BOUND + 1, 0x41));
    assert.equal(socket.paused, true);
    conn.client.pause(); // Haraka: connection.pause() (a hook of its own)
    conn.current_data = null;
    conn._process_data();
    assert.equal(socket.paused, true, 'we resumed a socket Haraka paused');
    conn.client.resume();
    assert.equal(socket.paused, false);
    conn.process_data(Buffer.alloc(INPUT_BOUND + 1, 0x41));
    conn.client.resume(); // Haraka: reset_transaction_respond
    assert.equal(socket.paused, true, 'Haraka resumed a socket over the bound');
    stopClientTimer(conn);
  });

  it('a connection without the internals it wraps: one warning, nothing wrapped', () => {
    const warnings: string[] = [];
    const socket = new FakeSocket();
    const conn = fakeConnection(socket) as unknown as Record<string, unknown>;
    delete conn._process_data;
    const processData = conn.process_data;
    boundClientInput(conn as unknown as Connection, limits, (m) => warnings.push(m));
    boundClientInput(fakeConnection(new FakeSocket()) as unknown as Connection, limits, (m) => warnings.push(m));
    assert.equal(conn.process_data, processData);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /not bounded/);
  });
});
