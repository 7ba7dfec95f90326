// The session with the mail server when the server misbehaves around DATA:
// a server that says 250 to DATA itself, and a held message (early send)
// whose server goes away; scripted servers, since no real one does this.

import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { DownstreamError, DownstreamSession } from '../../src/plugins/esets_forward/downstream_session';
import type { MessageStream } from '../../src/plugins/shared/haraka';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const HarakaMessageStream = require('haraka-message-stream') as new (cfg: Record<string, unknown>, id: string, headers: string[]) => MessageStream & {
  add_line(line: Buffer): void; add_line_end(cb?: () => void): void;
};

function messageStream(lines: string[]): MessageStream {
  const stream = new HarakaMessageStream({ main: { spool_after: -1 } }, 'test', []);
  for (const l of lines) stream.add_line(Buffer.from(l));
  stream.add_line_end();
  return stream;
}

/** A server answering each command line with `answer(line)`; DATA content is collected. */
async function scriptedServer(answer: (line: string) => string | undefined): Promise<{ port: number; data: string[]; close(): Promise<void> }> {
  const data: string[] = [];
  const server = net.createServer((socket) => {
    socket.write('220 scripted\r\n');
    let inData = false;
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      let i;
      while ((i = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            socket.write('250 2.0.0 queued\r\n');
          } else data.push(line);
          continue;
        }
        const reply = answer(line);
        if (reply === undefined) continue;
        if (reply.startsWith('354')) inData = true;
        if (reply === 'close') socket.destroy();
        else socket.write(`${reply}\r\n`);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, data, close: () => new Promise((r) => server.close(() => r())) };
}

const open = (port: number): Promise<DownstreamSession> => DownstreamSession.open({
  host: '127.0.0.1', port, connectTimeoutMs: 2000, commandTimeoutMs: 2000, dataTimeoutMs: 2000, heloName: 'relay.test',
});

describe('downstream session: DATA edge cases (scripted server)', () => {
  it('refuses to take a 250 to DATA itself as the message being accepted', async () => {
    const server = await scriptedServer((line) => (line.startsWith('DATA') ? '250 2.0.0 fine' : '250 ok'));
    try {
      for (const send of ['sendMessage', 'beginMessage'] as const) {
        const session = await open(server.port);
        await assert.rejects(session[send](messageStream(['Subject: x\r\n', '\r\n', 'body\r\n'])), DownstreamError);
        session.close();
      }
    } finally {
      await server.close();
    }
  });

  it('holds the final dot back until finish, dot-stuffed lines kept as sent', async () => {
    const server = await scriptedServer((line) => (line.startsWith('DATA') ? '354 go on' : '250 ok'));
    try {
      const session = await open(server.port);
      const held = await session.beginMessage(messageStream(['Subject: x\r\n', '\r\n', '..one dot\r\n', 'last\r\n']));
      assert.ok('finish' in held);
      await held.written;
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(server.data, ['Subject: x', '', '..one dot', 'last'], 'the message, and no final dot yet');
      const reply = await held.finish();
      assert.equal(reply.code, 250);
      session.close();
    } finally {
      await server.close();
    }
  });

  it('frees the message stream and fails the send when the server goes away mid-message', async () => {
    const server = await scriptedServer((line) => (line.startsWith('DATA') ? '354 go on' : '250 ok'));
    try {
      const session = await open(server.port);
      const big = Array.from({ length: 20000 }, (_, i) => `line ${i} ${'x'.repeat(70)}\r\n`);
      const stream = messageStream(['Subject: big\r\n', '\r\n', ...big]);
      const held = await session.beginMessage(stream);
      assert.ok('abort' in held);
      // the server "goes away": the relay's side of the connection drops
      (session as unknown as { socket: net.Socket }).socket.destroy();
      await assert.rejects(held.written, DownstreamError);
      // the message stream can be read again (a fallback scan pipes it)
      await new Promise<void>((resolve, reject) => {
        const sink = new Writable({ write: (_c, _e, done) => done() });
        sink.on('finish', resolve);
        try {
          stream.pipe(sink);
        } catch (err) {
          reject(err);
        }
      });
    } finally {
      await server.close();
    }
  });
});
