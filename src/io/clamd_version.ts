// Asks clamd for its engine and signature version (the VERSION command).

import net from 'node:net';
import { parseHostPort } from '../lib/esets_options';

export function clamdVersion(address: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const hostPort = address.startsWith('/') ? undefined : parseHostPort(address);
    const socket = hostPort ? net.connect(hostPort.port, hostPort.host) : net.connect(address);
    let reply = '';
    const timer = setTimeout(() => socket.destroy(new Error(`clamd ${address}: no VERSION reply within ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('zVERSION\0'));
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
