// The healthz listener, answering exactly like flanneld: GET /healthz -> 200 "flanneld is running";
// it also serves Prometheus /metrics (flanneld has none).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { log } from './log.js';

/** GET /healthz like flanneld; GET /metrics (Prometheus text) when a registry is given. */
export async function startHealthz(ip: string, port: number, metrics?: Registry): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/healthz' || req.url?.startsWith('/healthz?')) {
      res.writeHead(200);
      res.end('flanneld is running');
      return;
    }
    if (metrics && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      metrics.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(text);
        },
        (e: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`metrics: ${(e as Error).message}\n`);
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('404 page not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`healthz: listen on ${ip}:${port}: ${e.code ?? e.message}`)));
    server.listen(port, ip, () => resolve());
  });
  log.info(`Start healthz server on ${ip.includes(':') ? `[${ip}]` : ip}:${port}`);
  return server;
}
