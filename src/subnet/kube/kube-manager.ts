// The Kubernetes subnet manager (-kube-subnet-mgr), flannel's pkg/subnet/kube: the lease of this node is
// its spec.podCIDR(s), assigned by the controller-manager; flannel only publishes its attributes as node
// annotations and learns the other nodes' leases from theirs. There is no TTL: renew is a no-op and a
// lease goes away when its node object does. The net-conf comes from a file (-net-config-path).
import { readFileSync } from 'node:fs';
import { parseNetworkConfig } from '../../config/netconf.js';
import type { NetworkConfig } from '../../config/types.js';
import { containsNet, formatCIDR } from '../../ip/cidr.js';
import { log } from '../../log.js';
import {
  annotationNames,
  annotationPatch,
  KubeConfigError,
  leaseFingerprint,
  networkUnavailablePatch,
  NodeLeaseError,
  nodePodCIDRs,
  nodeToLease,
  ownNodeAnnotations,
  storedVtepMacs,
  type AnnotationNames,
  type Families,
  type NodeLike,
} from './annotations.js';
import { backoffDelay, formatDelay } from '../../util/backoff.js';
import { apiStatus, checkKubeConfig, describeKubeError, KubeNodeApi, loadKubeConfig, type NodeApi } from './client.js';
import { DEFAULT_RESYNC_MS, NodeReflector, type NodeChange } from './reflector.js';
import { DEFAULT_EVENT_QUEUE_DEPTH, NODE_CACHE_SYNC_TIMEOUT_MS, readKubeEnv, type KubeEnv } from './kube-env.js';
import { LeaseEventQueue } from './event-queue.js';
import type { AcquireOptions, Lease, LeaseAttrs, LeaseEvent, LeaseWatch, Manager, StoredPublicIP } from '../types.js';
import type { WatchStatus } from '../watch-health.js';

/** flannel's kube leases carry a nominal 24 h expiration; nothing enforces it. */
const KUBE_LEASE_TTL_MS = 24 * 60 * 60 * 1000;

export interface KubeManagerOptions {
  api: NodeApi;
  nodeName: string;
  names: AnnotationNames;
  netConfPath: string;
  setNodeNetworkUnavailable: boolean;
  /** Full node re-list period; flannel's resync is 5 min. */
  resyncMs?: number;
  /** API retry pacing: doubles from retryInitialMs up to retryMaxMs, jittered (backoffDelay). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Pause between looks at a node that has no pod CIDR yet. */
  podCidrRetryMs?: number;
  /** EVENT_QUEUE_DEPTH and CONT_WHEN_CACHE_NOT_READY (kube-env.ts); defaults as unset. */
  env?: Partial<KubeEnv>;
  /** How long the first node list may take (flannel: 10 minutes). */
  cacheSyncTimeoutMs?: number;
  /** The watch's liveness bound (-watch-liveness-seconds). */
  livenessMs?: number;
  now?: () => number;
}

/** Sleeps unless aborted; resolves false when aborted. */
function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = (): void => { clearTimeout(t); resolve(false); };
    // Removed when the timer fires, so long retry loops do not pile listeners onto the manager's signal.
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(true); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

class Aborted extends Error {
  constructor(what: string) {
    super(`${what}: stopped`);
    this.name = 'AbortError';
  }
}

/**
 * Node add/update/delete -> lease events, with flannel's filters: only nodes annotated
 * kube-subnet-manager=true are leases; an update that changes nothing a peer uses is ignored; a node
 * whose annotations or pod CIDRs are incomplete or malformed is skipped (logged at most once a minute
 * per node and message) until it becomes valid, and a lease already known is kept meanwhile.
 */
export class NodeLeaseTracker {
  private readonly known = new Map<string, { lease: Lease; fingerprint: string }>();
  private readonly lastLogged = new Map<string, { msg: string; at: number }>();

  constructor(
    private readonly names: AnnotationNames,
    private readonly families: Families,
    private readonly now: () => number = Date.now,
  ) {}

  leases(): Lease[] {
    return [...this.known.values()].map((k) => k.lease);
  }

  apply(changes: readonly NodeChange[]): LeaseEvent[] {
    const events: LeaseEvent[] = [];
    for (const change of changes) {
      const name = change.node.metadata?.name ?? '';
      const prev = this.known.get(name);
      if (change.type === 'delete') {
        if (prev) {
          this.known.delete(name);
          events.push({ type: 'removed', lease: prev.lease });
        }
        continue;
      }
      const node = change.node;
      if (node.metadata?.annotations?.[this.names.kubeSubnetManager] !== 'true') {
        // Not (or no longer) managed by flannel: not a lease.
        if (prev) {
          this.known.delete(name);
          events.push({ type: 'removed', lease: prev.lease });
        }
        continue;
      }
      let lease: Lease;
      try {
        lease = nodeToLease(node, this.names, this.families, new Date(this.now() + KUBE_LEASE_TTL_MS));
      } catch (e) {
        if (!(e instanceof NodeLeaseError)) throw e;
        this.logSkip(name, `Skipping node "${name}" as a lease until it is fixed: ${e.message}${prev ? ' (keeping its previous lease)' : ''}`);
        continue;
      }
      this.lastLogged.delete(name);
      const fingerprint = leaseFingerprint(lease);
      if (prev && prev.fingerprint === fingerprint) continue;
      if (prev && (formatOpt(prev.lease.subnet) !== formatOpt(lease.subnet) || formatOpt(prev.lease.ipv6Subnet) !== formatOpt(lease.ipv6Subnet))) {
        // A different subnet is a different lease: the old route must go.
        events.push({ type: 'removed', lease: prev.lease });
      }
      this.known.set(name, { lease, fingerprint });
      events.push({ type: 'added', lease });
    }
    return events;
  }

  private logSkip(name: string, msg: string): void {
    const last = this.lastLogged.get(name);
    const t = this.now();
    if (last && last.msg === msg && t - last.at < 60_000) return;
    this.lastLogged.set(name, { msg, at: t });
    log.warning(msg);
  }
}

const formatOpt = (n: Lease['subnet']): string => (n ? formatCIDR(n) : '');

export class KubeManager implements Manager {
  readonly name: string;
  private readonly abort = new AbortController();
  private readonly watches = new Set<LeaseWatch>();
  private readonly reflectors = new Set<NodeReflector>();
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: KubeManagerOptions) {
    this.name = `kube (node ${opts.nodeName})`;
    this.retryInitialMs = opts.retryInitialMs ?? 1000;
    this.retryMaxMs = opts.retryMaxMs ?? 30_000;
    this.now = opts.now ?? Date.now;
  }

  get nodeName(): string {
    return this.opts.nodeName;
  }

  /** net-conf.json from -net-config-path (kube mode has no config in the API). */
  async getNetworkConfig(): Promise<NetworkConfig> {
    const path = this.opts.netConfPath;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new Error(`failed to read net conf ${path} (-net-config-path): ${(e as Error).message}`);
    }
    try {
      return parseNetworkConfig(text);
    } catch (e) {
      throw new Error(`error parsing subnet config ${path}: ${(e as Error).message}`);
    }
  }

  /**
   * Runs `call` until it succeeds, backing off between attempts; a failure `fatal` accepts is thrown at
   * once. Stops (throws) when `signal` or close() aborts.
   */
  private async retry<T>(what: string, call: () => Promise<T>, signal?: AbortSignal, fatal?: (e: unknown) => boolean): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted || this.abort.signal.aborted) throw new Aborted(what);
      try {
        return await call();
      } catch (e) {
        if (fatal?.(e)) throw e;
        const wait = backoffDelay(attempt, this.retryInitialMs, this.retryMaxMs);
        log.error(`${what} failed (API server ${this.opts.api.server}): ${describeKubeError(e)}; retrying in ${formatDelay(wait)}`);
        if (!(await pause(wait, anySignal(signal, this.abort.signal)))) throw new Aborted(what);
      }
    }
  }

  /** Our node, waiting (with a repeated explanation) until the controller-manager assigned its pod CIDR. */
  private async nodeWithPodCIDR(signal?: AbortSignal): Promise<NodeLike> {
    const name = this.opts.nodeName;
    for (;;) {
      const node = await this.retry(`get node "${name}"`, () => this.opts.api.getNode(name), signal);
      if (nodePodCIDRs(node)) return node;
      log.error(
        `node "${name}" pod cidr not assigned: spec.podCIDR is empty. The kube-controller-manager assigns pod CIDRs ` +
          `only with --allocate-node-cidrs=true and --cluster-cidr set to the net-conf Network; waiting for it`,
      );
      if (!(await pause(this.opts.podCidrRetryMs ?? 5000, anySignal(signal, this.abort.signal)))) throw new Aborted(`wait for node "${name}" pod cidr`);
    }
  }

  async acquireLease(attrs: LeaseAttrs, opts: AcquireOptions = {}): Promise<Lease> {
    const config = await this.getNetworkConfig();
    const name = this.opts.nodeName;
    const node = await this.nodeWithPodCIDR(opts.signal);
    const cidrs = nodePodCIDRs(node)!;
    const lease: Lease = { attrs, expiration: new Date(this.now() + KUBE_LEASE_TTL_MS) };
    if (config.enableIPv4) {
      if (!cidrs.v4) throw new NodeLeaseError(name, 'spec.podCIDRs', `no IPv4 pod cidr (${JSON.stringify(node.spec?.podCIDRs ?? [])}) but net-conf enables IPv4`);
      if (!config.network || !containsNet(config.network, cidrs.v4)) {
        throw new NodeLeaseError(name, 'spec.podCIDR', `${formatCIDR(cidrs.v4)} is not inside the net-conf Network ${config.network ? formatCIDR(config.network) : '(none)'}`);
      }
      lease.subnet = cidrs.v4;
    }
    if (config.enableIPv6) {
      if (!cidrs.v6) throw new NodeLeaseError(name, 'spec.podCIDRs', `no IPv6 pod cidr (${JSON.stringify(node.spec?.podCIDRs ?? [])}) but net-conf enables IPv6`);
      if (!config.ipv6Network || !containsNet(config.ipv6Network, cidrs.v6)) {
        throw new NodeLeaseError(name, 'spec.podCIDRs', `${formatCIDR(cidrs.v6)} is not inside the net-conf IPv6Network ${config.ipv6Network ? formatCIDR(config.ipv6Network) : '(none)'}`);
      }
      lease.ipv6Subnet = cidrs.v6;
    }
    const update = ownNodeAnnotations(node.metadata?.annotations ?? {}, attrs, this.opts.names);
    for (const note of update.notes) log.info(note);
    if (Object.keys(update.changes).length > 0) {
      // flannel patches annotations through the status subresource with a strategic merge patch.
      await this.retry(`patch annotations of node "${name}"`, () => this.opts.api.patchNodeStatus(name, annotationPatch(update.changes), 'strategic'), opts.signal);
      log.info(`Patched node "${name}" annotations: ${Object.keys(update.changes).join(', ')}`);
    }
    return lease;
  }

  /** Kube leases have no TTL (flannel's RenewLease is unimplemented and never called in kube mode). */
  async renewLease(lease: Lease): Promise<Lease> {
    return { ...lease, expiration: new Date(this.now() + KUBE_LEASE_TTL_MS) };
  }

  /** flannel's GetStoredPublicIP: node-public-ip / node-public-ipv6 pin the addresses before interface selection. */
  async getStoredPublicIP(signal?: AbortSignal): Promise<StoredPublicIP> {
    const name = this.opts.nodeName;
    let node: NodeLike;
    try {
      node = await this.retry(`get node "${name}"`, () => this.opts.api.getNode(name), signal, (e) => apiStatus(e) === 404);
    } catch (e) {
      if (e instanceof Aborted) throw e;
      log.error(`Failed to get node "${name}" for its stored public IP: ${describeKubeError(e)}`);
      return {};
    }
    const ann = node.metadata?.annotations ?? {};
    const out: StoredPublicIP = {};
    const v4 = ann[this.opts.names.nodePublicIP] ?? '';
    const v6 = ann[this.opts.names.nodePublicIPv6] ?? '';
    if (v4 !== '') out.publicIP = v4;
    if (v6 !== '') out.publicIPv6 = v6;
    if (v4 !== '' || v6 !== '') log.info(`Node "${name}" pins its public address by annotation: ${[v4, v6].filter(Boolean).join(' ')}`);
    return out;
  }

  /** flannel's GetStoredMacAddresses: our node's advertised VtepMACs, for a vxlan device created anew. */
  async getStoredMacAddresses(signal?: AbortSignal): Promise<{ v4?: string; v6?: string }> {
    const name = this.opts.nodeName;
    try {
      const node = await this.retry(`get node "${name}"`, () => this.opts.api.getNode(name), signal, (e) => apiStatus(e) === 404);
      return storedVtepMacs(node.metadata?.annotations ?? {}, this.opts.names);
    } catch (e) {
      if (e instanceof Aborted) throw e;
      log.error(`Failed to get node for backend data: ${describeKubeError(e)}`);
      return {};
    }
  }

  /** flannel's CompleteLease: NodeNetworkUnavailable=False once the network runs (retried until it lands). */
  async completeLease(_lease: Lease, signal?: AbortSignal): Promise<void> {
    if (!this.opts.setNodeNetworkUnavailable) return;
    const name = this.opts.nodeName;
    const body = JSON.parse(networkUnavailablePatch(new Date(this.now()))) as object;
    await this.retry(`set NetworkUnavailable=False on node "${name}"`, () => this.opts.api.patchNodeStatus(name, body, 'strategic'), signal);
    log.info(`Set node "${name}" condition NetworkUnavailable=False (FlannelIsUp)`);
  }

  async watchLeases(onEvents: (events: LeaseEvent[]) => void | Promise<void>): Promise<LeaseWatch> {
    const config = await this.getNetworkConfig();
    const tracker = new NodeLeaseTracker(this.opts.names, { enableIPv4: config.enableIPv4, enableIPv6: config.enableIPv6 }, this.now);
    const queue = new LeaseEventQueue(this.opts.env?.eventQueueDepth ?? DEFAULT_EVENT_QUEUE_DEPTH, onEvents);
    let live = false;
    let closed = false;
    const reflector = new NodeReflector({
      source: this.opts.api,
      resyncMs: this.opts.resyncMs ?? DEFAULT_RESYNC_MS,
      backoffInitialMs: this.retryInitialMs,
      backoffMaxMs: this.retryMaxMs,
      livenessMs: this.opts.livenessMs,
      describeError: describeKubeError,
      onChanges: (changes) => {
        const events = tracker.apply(changes);
        // Changes of the initial list are the snapshot, not events.
        if (live && !closed) queue.push(events);
      },
    });
    const handle: LeaseWatch = {
      snapshot: [],
      close: async () => {
        closed = true;
        queue.close();
        reflector.stop();
        this.watches.delete(handle);
        this.reflectors.delete(reflector);
      },
    };
    this.watches.add(handle);
    this.reflectors.add(reflector);
    log.info(reflector.describeLiveness());
    const onAbort = (): void => reflector.stop();
    this.abort.signal.addEventListener('abort', onAbort, { once: true });
    if (!(await this.firstSync(reflector))) {
      // The first list is still being retried; its nodes arrive as events once it lands.
      live = true;
      return { snapshot: [], close: handle.close };
    }
    if (this.abort.signal.aborted) throw new Aborted('watch nodes');
    log.info('Node controller sync successful');
    live = true;
    return { snapshot: tracker.leases(), close: handle.close };
  }

  /**
   * Waits for the reflector's first list like flannel waits for its informer: 10 minutes, then exit 1
   * unless CONT_WHEN_CACHE_NOT_READY=true, which goes on without it (resolves false).
   */
  private async firstSync(reflector: NodeReflector): Promise<boolean> {
    const limit = this.opts.cacheSyncTimeoutMs ?? NODE_CACHE_SYNC_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), limit);
    });
    try {
      if ((await Promise.race([reflector.start().then(() => 'synced' as const), timedOut])) === 'synced') return true;
    } finally {
      clearTimeout(timer);
    }
    if (this.opts.env?.continueWhenCacheNotReady) {
      log.error(`Timed out waiting for node controller sync (${formatDelay(limit)}). Continuing anyway (CONT_WHEN_CACHE_NOT_READY=true).`);
      return false;
    }
    reflector.stop();
    throw new Error(`error waiting for nodeController to sync state: the node list did not succeed within ${formatDelay(limit)} (set CONT_WHEN_CACHE_NOT_READY=true to start without it)`);
  }

  /** The node watch's health (the most recent watch when there are several). */
  watchStatus(): WatchStatus | undefined {
    return [...this.reflectors].at(-1)?.health.snapshot();
  }

  async close(): Promise<void> {
    this.abort.abort();
    await Promise.all([...this.watches].map((w) => w.close()));
  }
}

function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a ? AbortSignal.any([a, b]) : b;
}

export interface CreateKubeManagerOptions {
  apiUrl: string;
  kubeconfigFile: string;
  annotationPrefix: string;
  netConfPath: string;
  setNodeNetworkUnavailable: boolean;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** For tests: a different service-account root, pacing. */
  serviceAccountRoot?: string;
  resyncMs?: number;
  retryInitialMs?: number;
  retryMaxMs?: number;
  podCidrRetryMs?: number;
  /** Bound on each API call (not the watch stream); 30 s by default. */
  requestTimeoutMs?: number;
  cacheSyncTimeoutMs?: number;
  /** The watch's liveness bound (-watch-liveness-seconds); 15 s by default. */
  livenessMs?: number;
}

/**
 * NODE_NAME, else the node of the pod POD_NAMESPACE/POD_NAME (the DaemonSet's downward API), retried
 * while the API server is unreachable. A missing pod or an unscheduled one is fatal, as in flannel.
 */
export async function resolveNodeName(api: NodeApi, env: NodeJS.ProcessEnv, signal?: AbortSignal, retryInitialMs = 1000, retryMaxMs = 30_000): Promise<string> {
  const nodeName = env.NODE_NAME ?? '';
  if (nodeName !== '') return nodeName;
  const pod = env.POD_NAME ?? '';
  const ns = env.POD_NAMESPACE ?? '';
  if (pod === '' || ns === '') {
    throw new KubeConfigError('-kube-subnet-mgr needs the node name: set NODE_NAME, or POD_NAME and POD_NAMESPACE (the downward API in the DaemonSet)');
  }
  for (let attempt = 0; ; attempt++) {
    try {
      const p = await api.getPod(ns, pod);
      const name = p.spec?.nodeName ?? '';
      if (name === '') throw new KubeConfigError(`pod ${ns}/${pod}: spec.nodeName is empty (the pod is not scheduled to a node)`);
      return name;
    } catch (e) {
      if (e instanceof KubeConfigError) throw e;
      const status = apiStatus(e);
      if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
        throw new KubeConfigError(`error retrieving pod spec for '${ns}/${pod}': ${describeKubeError(e)}`);
      }
      const wait = backoffDelay(attempt, retryInitialMs, retryMaxMs);
      log.error(`error retrieving pod spec for '${ns}/${pod}' from ${api.server}: ${describeKubeError(e)}; retrying in ${formatDelay(wait)}`);
      if (!(await pause(wait, signal))) throw new Aborted('resolve node name');
    }
  }
}

/** Builds the client (a bad kubeconfig or prefix is a KubeConfigError) and finds our node's name. */
export async function createKubeManager(opts: CreateKubeManagerOptions): Promise<KubeManager> {
  const names = annotationNames(opts.annotationPrefix);
  const env = readKubeEnv(opts.env ?? process.env);
  const kc = loadKubeConfig({ apiUrl: opts.apiUrl, kubeconfigFile: opts.kubeconfigFile, env: opts.env, serviceAccountRoot: opts.serviceAccountRoot });
  await checkKubeConfig(kc, opts.kubeconfigFile !== '' ? `-kubeconfig-file ${opts.kubeconfigFile}` : opts.apiUrl !== '' ? '-kube-api-url' : 'in-cluster config');
  const api = new KubeNodeApi(kc, opts.requestTimeoutMs);
  const nodeName = await resolveNodeName(api, opts.env ?? process.env, opts.signal, opts.retryInitialMs, opts.retryMaxMs);
  log.info(`Kube subnet manager: node "${nodeName}", API server ${api.server}, annotations ${names.backendType.replace(/backend-type$/, '*')}`);
  return new KubeManager({
    api,
    nodeName,
    names,
    netConfPath: opts.netConfPath,
    setNodeNetworkUnavailable: opts.setNodeNetworkUnavailable,
    resyncMs: opts.resyncMs,
    retryInitialMs: opts.retryInitialMs,
    retryMaxMs: opts.retryMaxMs,
    podCidrRetryMs: opts.podCidrRetryMs,
    env,
    cacheSyncTimeoutMs: opts.cacheSyncTimeoutMs,
    livenessMs: opts.livenessMs,
  });
}
