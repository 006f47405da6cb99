// The control loop: config -> interface -> backend -> lease -> subnet.env -> watch + renew + reconcile.
// It reconciles rather than only reacts: a periodic pass hands the backend the full lease set so a
// missed event or a restart leaves no stale or missing state. Dependencies are injected so the loop is
// tested with in-memory doubles.
import type { Backend, ExternalInterface, RunningNetwork } from './backend/types.js';
import type { BackendRegistry } from './backend/registry.js';
import type { NodeRoutes } from './blackhole.js';
import type { FlanneldOptions } from './config/flags.js';
import type { NetworkConfig } from './config/types.js';
import { formatCIDR, formatIP, netEqual, type IPNet } from './ip/index.js';
import { log } from './log.js';
import { sleepUnlessAborted } from './util/sleep.js';
import type { PreviousSubnets, SubnetEnvInput } from './subnet/subnetenv.js';
import { leaseKey } from './subnet/lease.js';
import type { Lease, LeaseEvent, LeaseWatch, Manager, StoredPublicIP } from './subnet/types.js';
import type { WatchStatus } from './subnet/watch-health.js';

export interface SubnetFileIO {
  readPrevious(path: string): PreviousSubnets;
  write(path: string, data: SubnetEnvInput): void;
}

/** The daemon's part of flanneld's options (-subnet-file, -ip-masq, -subnet-lease-renew-margin), plus test pacing. */
export interface DaemonOptions extends Pick<FlanneldOptions, 'subnetFile' | 'ipMasq' | 'subnetLeaseRenewMargin'> {
  /** Seconds between reconcile passes (flannel's route check interval is 10 s). */
  reconcileSeconds?: number;
  /** Seconds between attempts to fetch the network config (flannel retries every second). */
  configRetrySeconds?: number;
}

export interface DaemonDeps {
  manager: Manager;
  backends: BackendRegistry;
  /**
   * Picks the external interface once the config (families) is known. `stored` holds addresses the
   * manager has pinned (flannel's GetStoredPublicIP); they override -public-ip / -public-ipv6.
   */
  selectInterface(config: NetworkConfig, stored?: StoredPublicIP): ExternalInterface;
  subnetFileIO: SubnetFileIO;
  /** iptables masquerade/forward rules (-ip-masq, -iptables-forward-rules); absent: none. */
  firewall?: DaemonFirewall;
  /** -ip-blackhole-route: routes for our own subnet, kept while the daemon runs (blackhole.ts). */
  nodeRoutes?: NodeRoutes;
}

/** What the daemon needs from src/firewall: install rules for the lease (then keep them), remove them. */
export interface DaemonFirewall {
  /** Called once the config is known, before anything is created: throws when the rules cannot work here. */
  preflight?(config: NetworkConfig): Promise<void>;
  setup(config: NetworkConfig, lease: Lease): Promise<void>;
  teardown(): Promise<void>;
}

function sameSubnets(a: Lease, b: Lease): boolean {
  const eq = (x?: IPNet, y?: IPNet): boolean => (x === undefined ? y === undefined : y !== undefined && netEqual(x, y));
  return eq(a.subnet, b.subnet) && eq(a.ipv6Subnet, b.ipv6Subnet);
}

export class Daemon {
  config?: NetworkConfig;
  extIface?: ExternalInterface;
  lease?: Lease;
  network?: RunningNetwork;
  /** Leases of other nodes, as last seen (snapshot + events). */
  readonly peers = new Map<string, Lease>();
  counters = { leaseEvents: 0, renewals: 0, renewErrors: 0, reconcileRepairs: 0, reconcileErrors: 0 };
  /**
   * True once start() has the lease, the running backend, the traffic rules and subnet.env; false
   * again from stop(). /readyz and systemd's READY=1 follow it (flannel turns ready at subnet.env even
   * when its rules failed, and sends READY=1 even when subnet.env failed).
   */
  ready = false;

  private readonly abort = new AbortController();
  private watch?: LeaseWatch;
  private renewTimer?: NodeJS.Timeout;
  private reconcileTimer?: NodeJS.Timeout;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: DaemonDeps,
    private readonly opts: DaemonOptions,
  ) {}

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** The lease store's watch health (status, /metrics); undefined until the watch has started. */
  watchStatus(): WatchStatus | undefined {
    return this.deps.manager.watchStatus?.();
  }

  /** Runs until the lease and backend are up and subnet.env is written; the loops keep going after. */
  async start(): Promise<void> {
    const { manager } = this.deps;
    const config = await this.fetchConfig();
    if (!config) return;
    this.config = config;
    log.info(`Found network config - Backend type: ${config.backend.type}`);
    await this.deps.firewall?.preflight?.(config);

    const stored = manager.getStoredPublicIP ? await manager.getStoredPublicIP(this.signal) : undefined;
    const ext = this.deps.selectInterface(config, stored);
    this.extIface = ext;
    log.info(`Using interface with name ${ext.name} and address ${ext.ifaceAddr ? formatIP(ext.ifaceAddr) : ext.ifaceAddrV6 ? formatIP(ext.ifaceAddrV6) : '<none>'}`);
    if (ext.publicIP) log.info(`Using ${formatIP(ext.publicIP)} as external address`);
    if (ext.publicIPv6) log.info(`Using ${formatIP(ext.publicIPv6)} as external IPv6 address`);

    const storedMacs = manager.getStoredMacAddresses ? () => manager.getStoredMacAddresses!(this.signal) : undefined;
    const backend: Backend = await this.deps.backends.create(config.backend.type, { config, extIface: ext, storedMacs });
    const prev = this.deps.subnetFileIO.readPrevious(this.opts.subnetFile);
    const lease = await manager.acquireLease(
      {
        publicIP: ext.publicIP,
        publicIPv6: ext.publicIPv6,
        backendType: backend.type,
        backendData: backend.backendData(),
        backendV6Data: backend.backendV6Data(),
      },
      { previousSubnet: prev.subnet, previousIPv6Subnet: prev.ipv6Subnet, signal: this.signal },
    );
    this.lease = lease;
    log.info(
      `Allocated lease (ip: ${lease.subnet ? formatCIDR(lease.subnet) : '0.0.0.0/0'} ipv6: ${lease.ipv6Subnet ? formatCIDR(lease.ipv6Subnet) : '::/0'}) to current node (${ext.publicIP ? formatIP(ext.publicIP) : ext.publicIPv6 ? formatIP(ext.publicIPv6) : '?'})`,
    );

    const network = await backend.start(lease);
    this.network = network;
    // flannel's order: masquerade and forward rules before subnet.env, so pods never start without them.
    await this.deps.firewall?.setup(config, lease);
    this.deps.nodeRoutes?.start(config, lease);

    // Watch before writing subnet.env so pods never start on a node that does not know its peers yet.
    this.watch = await manager.watchLeases((events) => this.enqueue(() => this.applyEvents(events)));
    await this.enqueue(() => this.applyEvents(this.watch!.snapshot.map((l) => ({ type: 'added', lease: l }) as LeaseEvent)));
    // One reconcile pass now, not 10 s later: entries left from before a restart for leases that vanished
    // while we were down (flannel #2554) go before pods start, and before subnet.env says we are ready.
    await this.reconcileNow();

    try {
      this.deps.subnetFileIO.write(this.opts.subnetFile, {
        config,
        subnet: lease.subnet,
        ipv6Subnet: lease.ipv6Subnet,
        mtu: network.mtu,
        ipMasq: this.opts.ipMasq,
      });
    } catch (e) {
      throw new Error(`Failed to write subnet file ${this.opts.subnetFile}: ${(e as Error).message}`);
    }
    log.info(`Wrote subnet file to ${this.opts.subnetFile}`);
    log.info('Running backend.');
    // flannel's CompleteLease (kube: NodeNetworkUnavailable=False); it retries on its own, so not awaited.
    manager.completeLease?.(lease, this.signal).catch((e: unknown) => {
      if (!this.signal.aborted) log.error(`CompleteLease execute error: ${(e as Error).message}`);
    });
    this.scheduleRenew();
    this.scheduleReconcile();
    this.ready = !this.signal.aborted;
  }

  private async fetchConfig(): Promise<NetworkConfig | undefined> {
    const retryMs = (this.opts.configRetrySeconds ?? 1) * 1000;
    while (!this.signal.aborted) {
      try {
        return await this.deps.manager.getNetworkConfig(this.signal);
      } catch (e) {
        log.error(`Couldn't fetch network config: ${(e as Error).message}`);
      }
      await sleepUnlessAborted(retryMs, this.signal);
    }
    return undefined;
  }

  /** Serialises event handling and reconcile passes: the backend sees one change at a time. */
  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.queue.then(task, task);
    this.queue = next.catch((e: unknown) => log.error(`lease event handling failed: ${(e as Error).message}`));
    return this.queue;
  }

  private async applyEvents(events: LeaseEvent[]): Promise<void> {
    const own = this.lease;
    const relevant: LeaseEvent[] = [];
    for (const ev of events) {
      if (own && sameSubnets(ev.lease, own)) {
        if (ev.type === 'removed') log.warning(`our own lease ${leaseKey(own)} was removed from the store; it is renewed at the next renewal`);
        continue;
      }
      this.counters.leaseEvents++;
      const key = leaseKey(ev.lease);
      if (ev.type === 'added') this.peers.set(key, ev.lease);
      else this.peers.delete(key);
      log.info(`Lease ${ev.type === 'added' ? 'added' : 'removed'}: ${key} via ${ev.lease.attrs.publicIP ? formatIP(ev.lease.attrs.publicIP) : ev.lease.attrs.publicIPv6 ? formatIP(ev.lease.attrs.publicIPv6) : '?'}`);
      relevant.push(ev);
    }
    if (relevant.length > 0 && this.network) await this.network.handle(relevant);
  }

  private scheduleRenew(): void {
    const lease = this.lease;
    if (!lease || this.signal.aborted) return;
    const marginMs = this.opts.subnetLeaseRenewMargin * 60_000;
    const delay = Math.max(0, lease.expiration.getTime() - Date.now() - marginMs);
    // setTimeout cannot wait longer than ~24.8 days; leases are 24 h, so this only guards odd clocks.
    this.renewTimer = setTimeout(() => void this.renew(), Math.min(delay, 2 ** 31 - 1));
    this.renewTimer.unref();
  }

  private async renew(): Promise<void> {
    if (!this.lease || this.signal.aborted) return;
    try {
      this.lease = await this.deps.manager.renewLease(this.lease);
      this.counters.renewals++;
      log.info(`Lease renewed, new expiration: ${this.lease.expiration.toISOString()}`);
      this.scheduleRenew();
    } catch (e) {
      this.counters.renewErrors++;
      log.error(`Error renewing lease (trying again in 1 min): ${(e as Error).message}`);
      this.renewTimer = setTimeout(() => void this.renew(), 60_000);
      this.renewTimer.unref();
    }
  }

  private scheduleReconcile(): void {
    const ms = (this.opts.reconcileSeconds ?? 10) * 1000;
    this.reconcileTimer = setInterval(() => void this.reconcileNow(), ms);
    this.reconcileTimer.unref();
  }

  /** One reconcile pass over the current peer set; returns the number of repairs. */
  async reconcileNow(): Promise<number> {
    let repairs = 0;
    await this.enqueue(async () => {
      if (!this.network) return;
      try {
        repairs = await this.network.reconcile([...this.peers.values()]);
        if (repairs > 0) {
          this.counters.reconcileRepairs += repairs;
          log.info(`Reconcile repaired ${repairs} entries`);
        }
      } catch (e) {
        this.counters.reconcileErrors++;
        log.error(`Reconcile failed: ${(e as Error).message}`);
      }
    });
    return repairs;
  }

  /** Stops loops and the backend; the lease is kept (it expires by TTL or is reused on restart). */
  async stop(): Promise<void> {
    this.ready = false;
    this.abort.abort();
    if (this.renewTimer) clearTimeout(this.renewTimer);
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    this.deps.nodeRoutes?.stop();
    await this.watch?.close().catch(() => {});
    await this.queue;
    await this.network?.close();
    await this.deps.firewall?.teardown().catch((e: unknown) => log.error(`iptables clean-up failed: ${(e as Error).message}`));
    await this.deps.manager.close().catch(() => {});
  }
}
