// `flannelctl capture`'s side: asks the daemon's status socket for GET /capture and copies the pcap
// stream to a file or stdout. Closing the connection (Ctrl-C, the reader of stdout going away) is
// what stops the capture in the daemon.
import { request } from 'node:http';
import type { Writable } from 'node:stream';
import { socketHint } from '../status.js';
import { toQuery, type CaptureRequest } from './options.js';

export interface CaptureClientResult {
  /** From the daemon's trailers; absent when the capture was interrupted. */
  packets?: number;
  lost?: number;
  end?: string;
  bytes: number;
  interrupted: boolean;
}

export interface CaptureClientOptions {
  socket: string;
  request: CaptureRequest;
  out: Writable;
  /** Called once the daemon accepted the capture (its file header follows). */
  onStart?: (device: string) => void;
  signal?: AbortSignal;
}

export function runCaptureClient(o: CaptureClientOptions): Promise<CaptureClientResult> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    let settled = false;
    const done = (r: CaptureClientResult | Error): void => {
      if (settled) return;
      settled = true;
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    // agent: false: one connection, closed with the capture (no keep-alive pool holding the process).
    const req = request({ socketPath: o.socket, path: `/capture?${toQuery(o.request)}`, method: 'GET', agent: false }, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => done(new Error(body.trim() || `daemon answered ${res.statusCode}`)));
        return;
      }
      o.onStart?.(String(res.headers['x-capture-device'] ?? '?'));
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (!o.out.write(c)) {
          res.pause();
          o.out.once('drain', () => res.resume());
        }
      });
      res.on('end', () => {
        const num = (k: string): number | undefined => (res.trailers[k] === undefined ? undefined : Number(res.trailers[k]));
        done({ packets: num('x-capture-packets'), lost: num('x-capture-lost'), end: res.trailers['x-capture-end'], bytes, interrupted: false });
      });
      res.on('close', () => done({ bytes, interrupted: true }));
    });
    const interrupt = (): void => {
      req.destroy();
      done({ bytes, interrupted: true });
    };
    o.signal?.addEventListener('abort', interrupt, { once: true });
    o.out.once('error', (e: NodeJS.ErrnoException) => {
      // The reader of the pipe went away (tcpdump -c, head): a normal way to stop. Anything else
      // (e.g. EACCES opening -w FILE) is an error; either way the capture stops with the connection.
      if (e.code === 'EPIPE') return interrupt();
      req.destroy();
      done(new Error(`cannot write the capture: ${e.message}`));
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      done(new Error(`cannot capture via ${o.socket}: ${e.code ?? e.message}${socketHint(e.code)}`));
    });
    req.end();
  });
}
