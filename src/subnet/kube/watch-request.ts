// One Kubernetes watch request, issued with node's http/https and the kubeconfig's credentials rather
// than @kubernetes/client-node's Watch: that one returns its abort handle only once the response
// headers have arrived (an API server that accepts and never answers leaves a request nobody can
// cancel) and its 30 s timeout is overwritten. Here the abort handle exists from the first moment,
// every request has a connection of its own (its own agent, no keep-alive), and aborting destroys
// that connection, so a hung request never outlives its watch.
import { request as httpRequest, type Agent as HttpAgent, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export interface WatchHandlers {
  /** The API server answered 200: the watch is established (what confirms it; bookmarks do not). */
  onConfirmed(): void;
  /** One decoded line: {"type": ..., "object": ...}. Bookmarks included. */
  onEvent(type: string, object: unknown): void;
  /** Exactly once, unless aborted: no error when the server ended the stream cleanly. */
  onDone(err?: unknown): void;
}

/** A non-200 answer, with the status code the reflector branches on (410 Gone). */
export class WatchHttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'WatchHttpError';
  }
}

/** Splits a chunked body into lines; a JSON parse error skips the line (the API server sends whole objects). */
function lineReader(onLine: (line: string) => void): (chunk: Buffer) => void {
  let rest = '';
  return (chunk) => {
    rest += chunk.toString('utf8');
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl).trim();
      rest = rest.slice(nl + 1);
      if (line !== '') onLine(line);
    }
  };
}

/**
 * Starts GET <server><path>?watch=true&<params> and returns the function that aborts it (destroying
 * its connection; no callback follows an abort). Credentials, CA and client certificates come from the
 * kubeconfig, read again for every request (a rotated service-account token is picked up).
 */
export function startWatchRequest(kc: KubeConfig, path: string, params: Record<string, string>, h: WatchHandlers): () => void {
  let req: ClientRequest | undefined;
  let agent: HttpAgent | undefined;
  let finished = false;
  const finish = (err?: unknown): void => {
    if (finished) return;
    finished = true;
    req?.destroy();
    agent?.destroy();
    h.onDone(err);
  };
  const abort = (): void => {
    finished = true;
    req?.destroy();
    agent?.destroy();
  };
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    queueMicrotask(() => finish(new Error('no current cluster in the client configuration')));
    return abort;
  }
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  url.searchParams.set('watch', 'true');
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const opts: RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
  kc.applyToHTTPSOptions(opts).then(
    () => {
      if (finished) return;
      // A fresh agent per request (the kubeconfig builds one each time): nothing shared, nothing kept alive.
      agent = opts.agent as HttpAgent | undefined;
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      req = send(url, opts, (res: IncomingMessage) => onResponse(res));
      req.on('error', (e) => finish(e));
      req.end();
    },
    (e: unknown) => finish(e),
  );
  const onResponse = (res: IncomingMessage): void => {
    if (finished) return;
    if (res.statusCode !== 200) {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8').slice(0, 300);
        let message = body;
        try {
          const status = JSON.parse(body) as { message?: unknown };
          if (typeof status.message === 'string') message = status.message;
        } catch {
          // not a Status object: keep the text
        }
        finish(new WatchHttpError(res.statusCode ?? 0, `HTTP ${res.statusCode}: ${message.trim()}`));
      });
      res.on('error', (e) => finish(e));
      return;
    }
    h.onConfirmed();
    const feed = lineReader((line) => {
      if (finished) return;
      let parsed: { type?: unknown; object?: unknown };
      try {
        parsed = JSON.parse(line) as { type?: unknown; object?: unknown };
      } catch {
        return;
      }
      if (typeof parsed.type === 'string') h.onEvent(parsed.type, parsed.object);
    });
    res.on('data', feed);
    res.on('end', () => finish());
    res.on('error', (e) => finish(e));
    res.on('close', () => finish(res.complete ? undefined : new Error('watch connection closed mid-stream')));
  };
  return abort;
}
