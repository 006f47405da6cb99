// The healthz listener, answering exactly like flanneld: GET /healthz -> 200 "flanneld is running".
import { createServer, type Server } from 'node:http';
import { log } from './log.js';

export async function startHealthz(ip: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/healthz' || req.url?.startsWith('/healthz?')) {
      res.writeHead(200);
      res.end('flanneld is running');
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
