// A small Kubernetes API server for nodes (and the pods POD_NAME lookups need), speaking the real JSON:
// GET a node, list (`?limit=500&resourceVersion=0`, with metadata.resourceVersion), watch
// (`?watch=true&resourceVersion=N`: a chunked stream of {"type","object"} lines, replaying history after
// N; 410 Gone or an ERROR event when N is older than the compacted history), and PATCH of a node or its
// status subresource with strategic merge patch (conditions merged by type) or JSON merge patch. Watches
// honour timeoutSeconds and, with allowWatchBookmarks=true, get BOOKMARK events every `bookmarkMs`. Used
// by the tests (in-process, on 127.0.0.1) and by `flannelctl lab --store kube` (inside the lab's
// underlay namespace). Test controls: add/update/delete nodes, break, mute or hang watches, compact
// history, inject failures, stop and restart on the same port, count open connections.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export interface FakeNodeSpec {
  name: string;
  podCIDR?: string;
  podCIDRs?: string[];
  annotations?: Record<string, string>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  contentType: string;
  authorization: string;
  body: string;
}

interface Watcher {
  res: ServerResponse;
}

/**
 * How new watch requests misbehave: 'no-answer' (the request is read and never answered, not even with
 * headers: a hung API server), 'headers-only' (200 and headers, then nothing ever), or 'none'.
 */
export type WatchFault = 'none' | 'no-answer' | 'headers-only';

interface Failure {
  method?: string;
  path?: RegExp;
  status: number;
  remaining: number;
}

const isObject = (v: Json | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function clone<T extends Json>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** RFC 7386 JSON merge patch (null deletes). `strategicKeys` lists merged by a key (strategic merge). */
export function mergePatch(target: Json | undefined, patch: Json, strategic: boolean, path = ''): Json {
  if (!isObject(patch)) {
    if (strategic && Array.isArray(patch) && Array.isArray(target) && path === 'status.conditions') {
      // Strategic merge: conditions are a list keyed by "type".
      const out = target.map((c) => clone(c));
      for (const item of patch) {
        if (!isObject(item)) continue;
        const i = out.findIndex((c) => isObject(c) && c.type === item.type);
        if (i >= 0) out[i] = mergePatch(out[i], item, strategic, `${path}[]`);
        else out.push(clone(item));
      }
      return out;
    }
    return clone(patch);
  }
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v, strategic, path ? `${path}.${k}` : k);
  }
  return out;
}

function status(code: number, reason: string, message: string): JsonObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

export class FakeApiServer {
  readonly nodes = new Map<string, JsonObject>();
  readonly pods = new Map<string, JsonObject>();
  readonly requests: RecordedRequest[] = [];
  /** How a too-old watch is refused: an ERROR event in a 200 stream (the API server's way) or HTTP 410. */
  goneMode: 'event' | 'http' = 'event';
  /** BOOKMARK period for watches that ask for bookmarks; 0: none. */
  bookmarkMs = 0;
  watchFault: WatchFault = 'none';
  private rv: number;
  private history: Array<{ rv: number; type: string; object: JsonObject }> = [];
  /** Watches from a resourceVersion below this get 410 Gone. */
  private oldestRV = 0;
  private readonly watchers = new Set<Watcher>();
  /** Watch requests held by a fault (never answered, or headers only): cut by stop() or the client. */
  private readonly held = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();
  private readonly failures: Failure[] = [];
  private server?: Server;
  host = '127.0.0.1';
  port = 0;

  /** `resourceVersion`: where numbering starts (a restarted server must not reuse old versions). */
  constructor(opts: { resourceVersion?: number } = {}) {
    this.rv = opts.resourceVersion ?? 100;
  }

  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  /** Listens (port 0: any free port; a port: the same one again after stop()). */
  async start(host = this.host, port = this.port): Promise<number> {
    this.host = host;
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : port;
    this.server = server;
    return this.port;
  }

  /** Stops listening and cuts every connection (an API server crash, as the clients see it). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const w of this.watchers) w.res.destroy();
    this.watchers.clear();
    for (const r of this.held) r.destroy();
    this.held.clear();
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---- test controls ----

  addNode(spec: FakeNodeSpec): JsonObject {
    const node: JsonObject = {
      kind: 'Node',
      apiVersion: 'v1',
      metadata: { name: spec.name, uid: `uid-${spec.name}`, annotations: { ...(spec.annotations ?? {}) }, labels: { 'kubernetes.io/hostname': spec.name } },
      spec: {},
      status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }] },
    };
    const s = node.spec as JsonObject;
    if (spec.podCIDR !== undefined) s.podCIDR = spec.podCIDR;
    if (spec.podCIDRs !== undefined) s.podCIDRs = [...spec.podCIDRs];
    return this.commit('ADDED', node);
  }

  /** Applies `fn` to a copy of the node and publishes it as MODIFIED. */
  updateNode(name: string, fn: (node: JsonObject) => void): JsonObject {
    const cur = this.nodes.get(name);
    if (!cur) throw new Error(`fake apiserver: no node ${name}`);
    const next = clone(cur);
    fn(next);
    return this.commit('MODIFIED', next);
  }

  deleteNode(name: string): void {
    const cur = this.nodes.get(name);
    if (!cur) throw new Error(`fake apiserver: no node ${name}`);
    this.nodes.delete(name);
    this.rv++;
    const object = clone(cur);
    (object.metadata as JsonObject).resourceVersion = String(this.rv);
    this.publish('DELETED', object);
  }

  addPod(namespace: string, name: string, nodeName: string): void {
    this.pods.set(`${namespace}/${name}`, { kind: 'Pod', apiVersion: 'v1', metadata: { name, namespace }, spec: { nodeName } });
  }

  node(name: string): JsonObject | undefined {
    return this.nodes.get(name);
  }

  annotations(name: string): Record<string, string> {
    const a = (this.nodes.get(name)?.metadata as JsonObject | undefined)?.annotations;
    return isObject(a) ? (a as Record<string, string>) : {};
  }

  /** Cuts every open watch stream mid-flight (no final event). */
  breakWatches(): number {
    const n = this.watchers.size;
    for (const w of this.watchers) w.res.socket?.destroy();
    this.watchers.clear();
    return n;
  }

  /** Ends every open watch stream cleanly, as an API server does when a watch times out. */
  endWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  /** Stops feeding the open watches without closing them: a silently hung stream, as after a lost peer. */
  muteWatches(): void {
    this.watchers.clear();
  }

  /** Sends an ERROR event (a metav1.Status with `code`) into every open watch, which stays open. */
  sendWatchError(code: number, message = 'injected watch error'): void {
    const line = JSON.stringify({ type: 'ERROR', object: status(code, 'InternalError', message) }) + '\n';
    for (const w of this.watchers) w.res.write(line);
  }

  /** Forgets history: every resourceVersion seen so far is now too old (410 Gone). */
  compact(): void {
    this.oldestRV = this.rv + 1;
    this.history = [];
  }

  /** The next `count` requests matching method/path are never answered (a hung API server). */
  hangNext(count = 1, match: { method?: string; path?: RegExp } = {}): void {
    this.failures.push({ ...match, status: 0, remaining: count });
  }

  /** The next `count` requests matching method/path get HTTP `status`. */
  failNext(status: number, count = 1, match: { method?: string; path?: RegExp } = {}): void {
    this.failures.push({ ...match, status, remaining: count });
  }

  openWatches(): number {
    return this.watchers.size;
  }

  /** TCP connections open on the server right now (any request, hung ones included). */
  connections(): number {
    return this.sockets.size;
  }

  // ---- internals ----

  private commit(type: 'ADDED' | 'MODIFIED', node: JsonObject): JsonObject {
    this.rv++;
    const meta = node.metadata as JsonObject;
    meta.resourceVersion = String(this.rv);
    meta.creationTimestamp ??= new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    this.nodes.set(String(meta.name), node);
    this.publish(type, clone(node));
    return node;
  }

  private publish(type: string, object: JsonObject): void {
    this.history.push({ rv: this.rv, type, object });
    const line = JSON.stringify({ type, object }) + '\n';
    for (const w of this.watchers) w.res.write(line);
  }

  private send(res: ServerResponse, code: number, body: Json): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const rec: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        contentType: String(req.headers['content-type'] ?? ''),
        authorization: String(req.headers.authorization ?? ''),
        body: Buffer.concat(chunks).toString('utf8'),
      };
      this.requests.push(rec);
      try {
        this.route(rec, res);
      } catch (e) {
        this.send(res, 500, status(500, 'InternalError', (e as Error).message));
      }
    });
  }

  private route(req: RecordedRequest, res: ServerResponse): void {
    const failure = this.failures.find((f) => f.remaining > 0 && (!f.method || f.method === req.method) && (!f.path || f.path.test(req.path)));
    if (failure) {
      failure.remaining--;
      if (failure.status === 0) return; // hang: the socket is cut by stop() or the client's timeout
      this.send(res, failure.status, status(failure.status, 'InternalError', `injected failure ${failure.status}`));
      return;
    }
    let m: RegExpExecArray | null;
    if (req.path === '/api/v1/nodes' && req.method === 'GET') {
      const w = req.query.get('watch');
      if (w === 'true' || w === '1') this.watch(req, res);
      else this.list(res);
      return;
    }
    if ((m = /^\/api\/v1\/nodes\/([^/]+)(\/status)?$/.exec(req.path))) {
      const name = decodeURIComponent(m[1] ?? '');
      const node = this.nodes.get(name);
      if (!node) {
        this.send(res, 404, status(404, 'NotFound', `nodes "${name}" not found`));
        return;
      }
      if (req.method === 'GET') this.send(res, 200, node);
      else if (req.method === 'PATCH') this.patch(req, res, name, m[2] !== undefined);
      else this.send(res, 405, status(405, 'MethodNotAllowed', `${req.method} not supported`));
      return;
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(req.path)) && req.method === 'GET') {
      const key = `${decodeURIComponent(m[1] ?? '')}/${decodeURIComponent(m[2] ?? '')}`;
      const pod = this.pods.get(key);
      if (pod) this.send(res, 200, pod);
      else this.send(res, 404, status(404, 'NotFound', `pods "${m[2]}" not found`));
      return;
    }
    this.send(res, 404, status(404, 'NotFound', `the server could not find the requested resource (${req.method} ${req.path})`));
  }

  private list(res: ServerResponse): void {
    this.send(res, 200, {
      kind: 'NodeList',
      apiVersion: 'v1',
      metadata: { resourceVersion: String(this.rv) },
      items: [...this.nodes.values()].map((n) => clone(n)),
    });
  }

  private watch(req: RecordedRequest, res: ServerResponse): void {
    if (this.watchFault !== 'none') {
      if (this.watchFault === 'headers-only') {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
        res.flushHeaders();
      }
      this.held.add(res);
      res.once('close', () => this.held.delete(res));
      return;
    }
    const rvText = req.query.get('resourceVersion') ?? '';
    const from = rvText === '' || rvText === '0' ? undefined : Number(rvText);
    if (from !== undefined && (!Number.isFinite(from) || from < this.oldestRV - 1)) {
      const gone = status(410, 'Expired', `too old resource version: ${rvText} (${this.oldestRV})`);
      if (this.goneMode === 'http') {
        this.send(res, 410, gone);
      } else {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ type: 'ERROR', object: gone }) + '\n');
      }
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    // The API server sends the headers at once; clients wait for them before reading events.
    res.flushHeaders();
    if (from === undefined) {
      for (const n of this.nodes.values()) res.write(JSON.stringify({ type: 'ADDED', object: n }) + '\n');
    } else {
      for (const e of this.history) if (e.rv > from) res.write(JSON.stringify({ type: e.type, object: e.object }) + '\n');
    }
    const w: Watcher = { res };
    this.watchers.add(w);
    const timers: NodeJS.Timeout[] = [];
    // The API server ends a watch after its timeoutSeconds (cleanly: the client resumes from its version).
    const timeout = Number(req.query.get('timeoutSeconds') ?? '0');
    if (timeout > 0) timers.push(setTimeout(() => res.end(), timeout * 1000));
    if (this.bookmarkMs > 0 && req.query.get('allowWatchBookmarks') === 'true') {
      timers.push(
        setInterval(() => {
          // A muted watch gets no bookmarks either.
          if (!this.watchers.has(w)) return;
          const bookmark = { kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } };
          res.write(JSON.stringify({ type: 'BOOKMARK', object: bookmark }) + '\n');
        }, this.bookmarkMs),
      );
    }
    res.once('close', () => {
      this.watchers.delete(w);
      for (const t of timers) clearTimeout(t);
    });
  }

  private patch(req: RecordedRequest, res: ServerResponse, name: string, statusSubresource: boolean): void {
    const type = req.contentType.split(';')[0]?.trim() ?? '';
    if (type !== 'application/strategic-merge-patch+json' && type !== 'application/merge-patch+json') {
      this.send(res, 415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got "${type}")`));
      return;
    }
    let patch: Json;
    try {
      patch = JSON.parse(req.body) as Json;
    } catch (e) {
      this.send(res, 400, status(400, 'BadRequest', `invalid JSON patch: ${(e as Error).message}`));
      return;
    }
    if (!isObject(patch)) {
      this.send(res, 400, status(400, 'BadRequest', 'patch must be a JSON object'));
      return;
    }
    // The status subresource ignores spec changes; the main resource ignores status changes.
    const p = { ...patch };
    if (statusSubresource) delete p.spec;
    else delete p.status;
    const cur = this.nodes.get(name)!;
    const next = mergePatch(cur, p, type === 'application/strategic-merge-patch+json') as JsonObject;
    (next.metadata as JsonObject).name = name;
    const saved = this.commit('MODIFIED', next);
    this.send(res, 200, saved);
  }
}
