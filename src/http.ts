// The healthz listener, answering exactly like flanneld v0.28.9: GET /healthz -> 200 "flanneld is
// running" (liveness: the process serves); GET /readyz -> 503 "flanneld is not ready yet" until
// `isReady()` says so, then 200 "flanneld is ready" (readiness, the manifest's readinessProbe).
// It also serves Prometheus /metrics (flanneld has none).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { log } from './log.js';

const isPath = (url: string | undefined, path: string): boolean => url === path || (url?.startsWith(`${path}?`) ?? false);

export interface HealthzOptions {
  /** Whether the daemon is ready (the answer of /readyz), asked on every request. */
  isReady: () => boolean;
  /** Registry for /metrics; without it /metrics is a 404. */
  metrics?: Registry;
}

/** GET /healthz and /readyz like flanneld; GET /metrics (Prometheus text) when a registry is given. */
export async function startHealthz(ip: string, port: number, opts: HealthzOptions): Promise<Server> {
  const { isReady, metrics } = opts;
  const server = createServer((req, res) => {
    if (isPath(req.url, '/healthz')) {
      res.writeHead(200);
      res.end('flanneld is running');
      return;
    }
    if (isPath(req.url, '/readyz')) {
      const ready = isReady();
      res.writeHead(ready ? 200 : 503);
      res.end(ready ? 'flanneld is ready' : 'flanneld is not ready yet');
      return;
    }
    if (metrics && isPath(req.url, '/metrics')) {
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
