// The manager's HTTP listener (http_listen): GET /health and GET /metrics,
// nothing else. Requests are not logged (a balancer checks every few seconds).

import http from 'node:http';
import { HEALTH_PROBE_MAX_MS, HealthProbe } from './health_probe';
import { collectMetrics } from './relay_metrics';

/** a monitoring endpoint has a few clients: more at once are refused */
const MAX_CONNECTIONS = 64;
/**
 * a connection silent this long is closed (a request never sent, replies never read): longer than a /health
 * request can take, which sends nothing while it probes
 */
const IDLE_MS = HEALTH_PROBE_MAX_MS + 5_000;

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
      collectMetrics(() => health.check())
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
  // Every socket's inactivity timeout, which Node sets at connect and again at each request (with 0 it
  // would turn a socket's own timeout off at the first request: a client pipelining requests and never
  // reading the replies then held its connection, and 64 of them the listener, for as long as it liked).
  // With no 'timeout' listener Node destroys the socket. Node's headersTimeout check runs only every
  // 30 s; when it comes first, it answers 408 and closes.
  server.timeout = IDLE_MS;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
