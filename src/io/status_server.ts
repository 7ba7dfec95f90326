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
  // a connection that never sends a request is closed by its own timeout (Node's headersTimeout check
  // runs only every 30 s; when it comes first, it answers 408 and closes)
  server.on('connection', (socket: net.Socket) => socket.setTimeout(IDLE_MS, () => socket.destroy()));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
