// The Kubernetes API as flannel's kube subnet manager uses it, over @kubernetes/client-node: client
// configuration the way client-go's BuildConfigFromFlags picks it (-kubeconfig-file, -kube-api-url,
// else the pod's service account), node get/list/watch/patch and the pod lookup for POD_NAME.
import { existsSync } from 'node:fs';
import { ApiException, CoreV1Api, KubeConfig, Observable, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { ConfigurationOptions, ObservableMiddleware, V1Node, V1Pod } from '@kubernetes/client-node';
import { KubeConfigError } from './annotations.js';
import type { NodeList, NodeSource, NodeWatchParams } from './node-source.js';
import { startWatchRequest, type WatchHandlers } from './watch-request.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeClientOptions {
  /** -kube-api-url: the API server; with a kubeconfig it replaces the current cluster's server. */
  apiUrl: string;
  /** -kubeconfig-file. */
  kubeconfigFile: string;
  /** Environment for the in-cluster case (KUBERNETES_SERVICE_HOST/PORT). */
  env?: NodeJS.ProcessEnv;
  /** Root for the service-account files (tests point it at a temp dir). */
  serviceAccountRoot?: string;
}

function checkServer(server: string, origin: string): void {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new KubeConfigError(`${origin}: API server "${server}" is not a URL (e.g. https://198.18.0.1:6443)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new KubeConfigError(`${origin}: API server "${server}" must be http:// or https://`);
  }
}

/**
 * client-node refuses an http:// server unless skipTLSVerify is set, although plain HTTP has no TLS to
 * verify; client-go (and so flannel) talks plain HTTP to such a server. Mark those clusters so.
 */
function allowPlainHttp(kc: KubeConfig): void {
  if (!kc.clusters.some((c) => c.server.startsWith('http:') && !c.skipTLSVerify)) return;
  kc.loadFromOptions({
    clusters: kc.clusters.map((c) => (c.server.startsWith('http:') ? { ...c, skipTLSVerify: true } : c)),
    contexts: kc.contexts,
    users: kc.users,
    currentContext: kc.getCurrentContext(),
  });
}

/**
 * Client configuration, in client-go's order: a kubeconfig file (its current context; -kube-api-url
 * overrides its server), else -kube-api-url alone (no credentials), else the in-cluster service
 * account. Every failure is a KubeConfigError naming the file or variable.
 */
export function loadKubeConfig(opts: KubeClientOptions): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfigFile !== '') {
    const file = opts.kubeconfigFile;
    if (!existsSync(file)) throw new KubeConfigError(`-kubeconfig-file ${file}: no such file`);
    try {
      kc.loadFromFile(file);
    } catch (e) {
      throw new KubeConfigError(`-kubeconfig-file ${file}: cannot load it: ${(e as Error).message}`);
    }
    const context = kc.getCurrentContext();
    if (!context) throw new KubeConfigError(`-kubeconfig-file ${file}: no current-context set`);
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new KubeConfigError(`-kubeconfig-file ${file}: current-context "${context}" names no cluster defined in the file`);
    if (opts.apiUrl !== '') {
      checkServer(opts.apiUrl, '-kube-api-url');
      kc.loadFromOptions({
        clusters: kc.clusters.map((c) => (c.name === cluster.name ? { ...c, server: opts.apiUrl } : c)),
        contexts: kc.contexts,
        users: kc.users,
        currentContext: context,
      });
    } else {
      checkServer(cluster.server, `-kubeconfig-file ${file}: cluster "${cluster.name}"`);
    }
    allowPlainHttp(kc);
    return kc;
  }
  if (opts.apiUrl !== '') {
    checkServer(opts.apiUrl, '-kube-api-url');
    kc.loadFromClusterAndUser({ name: 'flanneld', server: opts.apiUrl, skipTLSVerify: false }, { name: 'flanneld' });
    allowPlainHttp(kc);
    return kc;
  }
  const env = opts.env ?? process.env;
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT ?? '';
  if (host === '' || port === '') {
    throw new KubeConfigError(
      'no -kubeconfig-file or -kube-api-url given and not running in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset)',
    );
  }
  const root = opts.serviceAccountRoot ?? '';
  const tokenFile = `${root}${SERVICE_ACCOUNT_DIR}/token`;
  if (!existsSync(tokenFile)) throw new KubeConfigError(`in-cluster config: service account token ${tokenFile} is missing`);
  // The library reads these two variables itself; hand it the ones we were given.
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  process.env.KUBERNETES_SERVICE_HOST = host;
  process.env.KUBERNETES_SERVICE_PORT = port;
  try {
    kc.loadFromCluster(root);
  } finally {
    if (saved.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
    else process.env.KUBERNETES_SERVICE_HOST = saved.host;
    if (saved.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
    else process.env.KUBERNETES_SERVICE_PORT = saved.port;
  }
  return kc;
}

/**
 * Builds the request options once (reads CA/cert/key/token files, builds the agent) so an unusable
 * configuration is a start-up error rather than an endless retry.
 */
export async function checkKubeConfig(kc: KubeConfig, origin: string): Promise<void> {
  try {
    await kc.applyToFetchOptions({});
  } catch (e) {
    throw new KubeConfigError(`${origin}: unusable client configuration: ${(e as Error).message}`);
  }
}

/** One line for logs: the HTTP status and the API's message, or the network error. */
export function describeKubeError(e: unknown): string {
  if (e instanceof ApiException) {
    const body: unknown = e.body;
    let msg = '';
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: unknown };
        msg = typeof parsed.message === 'string' ? parsed.message : body;
      } catch {
        msg = body;
      }
    } else if (typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string') {
      msg = (body as { message: string }).message;
    }
    return `HTTP ${e.code}${msg ? `: ${msg.trim().slice(0, 300)}` : ''}`;
  }
  if (e instanceof Error && (e.name === 'AbortError' || e.name === 'TimeoutError')) {
    // Our per-request timeout fired (node-fetch reports it as a user abort).
    return 'no answer from the API server within the request timeout';
  }
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const cause = (e as { cause?: unknown }).cause;
    const causeMsg = cause instanceof Error ? ` (${cause.message})` : '';
    return `${e.message}${typeof code === 'string' && !e.message.includes(code) ? ` [${code}]` : ''}${causeMsg}`;
  }
  return String(e);
}

/** HTTP status of a failed call, undefined for network errors. */
export function apiStatus(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}

export type PatchType = 'strategic' | 'merge';

/** The node API the kube manager needs; the tests' fake API server is reached through this same code. */
export interface NodeApi extends NodeSource {
  readonly server: string;
  getNode(name: string): Promise<V1Node>;
  getPod(namespace: string, name: string): Promise<V1Pod>;
  /** PATCH /api/v1/nodes/<name>/status, as flannel patches both annotations and conditions. */
  patchNodeStatus(name: string, body: object, type: PatchType): Promise<void>;
}

/** Aborts each request after `ms`: an API server that accepts connections but never answers must not hang a retry loop. */
function timeoutMiddleware(ms: number): ObservableMiddleware {
  return {
    pre: (ctx) => {
      ctx.setSignal(AbortSignal.timeout(ms));
      return new Observable(Promise.resolve(ctx));
    },
    post: (res) => new Observable(Promise.resolve(res)),
  };
}

export class KubeNodeApi implements NodeApi {
  readonly server: string;
  private readonly core: CoreV1Api;
  private readonly timeout: ConfigurationOptions;

  /** `requestTimeoutMs` bounds every call except the watch stream (the reflector keeps its deadlines). */
  constructor(
    private readonly kc: KubeConfig,
    requestTimeoutMs = 30_000,
  ) {
    this.server = kc.getCurrentCluster()?.server ?? '';
    this.core = kc.makeApiClient(CoreV1Api);
    this.timeout = { middleware: [timeoutMiddleware(requestTimeoutMs)], middlewareMergeStrategy: 'append' };
  }

  getNode(name: string): Promise<V1Node> {
    return this.core.readNode({ name }, this.timeout);
  }

  getPod(namespace: string, name: string): Promise<V1Pod> {
    return this.core.readNamespacedPod({ namespace, name }, this.timeout);
  }

  /** Lists like client-go's reflector (limit=500, resourceVersion=0), following continue tokens. */
  async list(): Promise<NodeList> {
    const first = await this.core.listNode({ limit: 500, resourceVersion: '0' }, this.timeout);
    const items = [...first.items];
    let rv = first.metadata?.resourceVersion ?? '';
    let next = first.metadata?._continue;
    while (next) {
      const page = await this.core.listNode({ limit: 500, _continue: next }, this.timeout);
      items.push(...page.items);
      rv = page.metadata?.resourceVersion ?? rv;
      next = page.metadata?._continue;
    }
    return { items, resourceVersion: rv };
  }

  watch(params: NodeWatchParams, handlers: WatchHandlers): () => void {
    const query: Record<string, string> = { allowWatchBookmarks: 'true', timeoutSeconds: String(params.timeoutSeconds) };
    if (params.resourceVersion !== '') query.resourceVersion = params.resourceVersion;
    return startWatchRequest(this.kc, '/api/v1/nodes', query, handlers);
  }

  async patchNodeStatus(name: string, body: object, type: PatchType): Promise<void> {
    const contentType = type === 'strategic' ? PatchStrategy.StrategicMergePatch : PatchStrategy.MergePatch;
    await this.core.patchNodeStatus({ name, body }, setHeaderOptions('Content-Type', contentType, this.timeout));
  }
}
