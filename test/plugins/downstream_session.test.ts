// The session with the mail server when the server misbehaves around DATA:
// a server that says 250 to DATA itself, and a held message (early send)
// whose server goes away; scripted servers, since no real one does this.

import assert from 'node:assert/strict';
import net from 'node:net';
import { DownstreamError, DownstreamSession, HandoverRefused } from '../../src/io/downstream_session';

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
  host: '127.0.0.1', port, connectTimeoutMs: 2000, commandTimeoutMs: 2000, dataTimeoutMs: 2000, heloName: 'relay.test', requireXclient: false,
});

async function* parts(chunks: string[]): AsyncGenerator<Buffer> {
  for (const c of chunks) yield Buffer.from(c);
}

describe('downstream session: DATA (scripted server)', () => {
  it('refuses to take a 250 to DATA itself as the message being accepted', async () => {
    const server = await scriptedServer((line) => (line.startsWith('DATA') ? '250 2.0.0 fine' : '250 ok'));
    try {
      const session = await open(server.port);
      await assert.rejects(session.sendMessage(parts(['Subject: x\r\n', '\r\n', 'body\r\n'])), DownstreamError);
      session.close();
    } finally {
      await server.close();
    }
  });

  it('stuffs every line that starts with a dot itself, across chunk boundaries, and ends with one final dot', async () => {
    const server = await scriptedServer((line) => (line.startsWith('DATA') ? '354 go on' : '250 ok'));
    try {
      const session = await open(server.port);
      // the captured (un-stuffed) bytes: a line "." and a line ".x" split over chunks
      const reply = await session.sendMessage(parts(['Subject: x\r\n\r\n.one dot\r', '\n', '.', '\r\n..two\r\nlast']));
      assert.equal(reply.code, 250);
      assert.deepEqual(server.data, ['Subject: x', '', '..one dot', '..', '...two', 'last'], 'stuffed once, a CRLF added to the last line');
      session.close();
    } finally {
      await server.close();
    }
  });

  it('fails the send, without a final dot, when the message cannot be read', async () => {
    const server = await scriptedServer((line) => (line.startsWith('DATA') ? '354 go on' : '250 ok'));
    try {
      const session = await open(server.port);
      async function* broken(): AsyncGenerator<Buffer> {
        yield Buffer.from('Subject: x\r\n\r\npart\r\n');
        throw new Error('spool file gone');
      }
      await assert.rejects(session.sendMessage(broken()), /spool file gone/);
      assert.equal(session.alive, false, 'the session is dropped: the server discards a message without its dot');
    } finally {
      await server.close();
    }
  });

  it('fails closed when the server does not offer XCLIENT and trusts the relay', async () => {
    const server = await scriptedServer(() => '250 ok');
    try {
      await assert.rejects(DownstreamSession.open({
        host: '127.0.0.1', port: server.port, connectTimeoutMs: 2000, commandTimeoutMs: 2000, dataTimeoutMs: 2000,
        heloName: 'relay.test', requireXclient: true, client: { addr: '192.0.2.1' },
      }), HandoverRefused);
    } finally {
      await server.close();
    }
  });
});
