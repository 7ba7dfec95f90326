// The manager's HTTP listener (http_listen): GET /health and GET /metrics,
// nothing else. Requests are not logged (a balancer checks every few seconds).

import http from 'node:http';
import type net from 'node:net';
import type { HealthProbe } from './health_probe';
import { collectMetrics } from './relay_metrics';

/** a monitoring endpoint has a few clients: more at once are refused */
const MAX_CONNECTIONS = 64;
/** a connection silent this long is closed (a request never sent, a keep-alive left open) */
const IDLE_MS = 10_000;
/** how often idle connections are looked for */
const SWEEP_MS = 1_000;

export function startStatusServer(host: string, port: number, health: HealthProbe): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'GET only\n');
    const route = (req.url ?? '').split('?')[0];
    if (route === '/health') {
      void health.check().then((a) => send(a.status, 'application/json', `${JSON.stringify(a.body)}\n`));
      return;
    }
    if (route === '/metrics') {
      collectMetrics()
        .then((m) => send(200, m.contentType, m.text))
        .catch((err: Error) => send(500, 'text/plain', `metrics unavailable: ${err.message}\n`));
      return;
    }
    send(404, 'text/plain', 'not found: /health, /metrics\n');
  });
  // a slow or idle client must not hold the manager's sockets (its file descriptors are the workers' too:
  // a manager out of them cannot start a worker)
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.maxConnections = MAX_CONNECTIONS;
  // Idle connections are swept by the server itself as well as by each socket's
  // timeout: in full test runs a socket's timeout alone was seen not to close them.
  const sockets = new Map<net.Socket, { since: number; requests: number }>();
  server.on('connection', (socket: net.Socket) => {
    sockets.set(socket, { since: Date.now(), requests: 0 });
    socket.once('close', () => sockets.delete(socket));
    socket.setTimeout(IDLE_MS, () => socket.destroy());
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const state = sockets.get(req.socket);
    if (!state) return;
    state.requests++;
    res.once('close', () => {
      state.requests--;
      state.since = Date.now();
    });
  });
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [socket, state] of sockets) if (state.requests === 0 && now - state.since > IDLE_MS) socket.destroy();
  }, SWEEP_MS).unref();
  server.once('close', () => clearInterval(sweep));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
