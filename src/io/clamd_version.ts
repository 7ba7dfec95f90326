// One-line clamd commands on a connection of their own: VERSION (engine and
// signature version) and PING (is the daemon alive, whatever it is scanning).

import net from 'node:net';
import { parseHostPort } from '../lib/esets_options';

export function clamdVersion(address: string, timeoutMs: number): Promise<string> {
  return clamdCommand(address, 'VERSION', timeoutMs);
}

/** True when the daemon answers PONG within `timeoutMs`. */
export function answersPing(address: string, timeoutMs: number): Promise<boolean> {
  return clamdCommand(address, 'PING', timeoutMs).then((reply) => reply === 'PONG', () => false);
}

function clamdCommand(address: string, command: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const hostPort = address.startsWith('/') ? undefined : parseHostPort(address);
    const socket = hostPort ? net.connect(hostPort.port, hostPort.host) : net.connect(address);
    let reply = '';
    const timer = setTimeout(() => socket.destroy(new Error(`clamd ${address}: no ${command} reply within ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`z${command}\0`));
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (reply.includes('\0')) socket.end();
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(reply.replace(/\0/g, '').trim());
    });
  });
}
