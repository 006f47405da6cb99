// EtcdManager: flannel's etcd v3 lease store (pkg/subnet/etcd), same keys, JSON and TTL semantics, so
// our nodes and stock flanneld share one etcd. Reading leases is lease-reader.ts, the watch (list, watch
// from the list's revision, re-list on failure and periodically) lease-watch.ts, and the client that
// both use, with keepalive and replacement when it dies, etcd-client.ts plus the probe in
// liveness-probe.ts.
import type { Etcd3 } from 'etcd3';
import type { NetworkConfig } from '../../config/types.js';
import { parseNetworkConfig } from '../../config/netconf.js';
import { mathRandomInt } from '../../ip/cidr.js';
import type { RandomInt } from '../../ip/cidr.js';
import type { IPNet } from '../../ip/types.js';
import { log } from '../../log.js';
import { withDeadline } from '../../util/timeout.js';
import { acquireFromStore } from '../allocate.js';
import type { LeaseStoreOps } from '../allocate.js';
import { waitForNetworkConfig } from '../config-wait.js';
import { encodeLeaseAttrs, subnetKeyPath } from '../lease.js';
import type { AcquireOptions, Lease, LeaseAttrs, LeaseEvent, LeaseWatch, Manager } from '../types.js';
import { DEFAULT_LIVENESS_MS, WatchHealth, type WatchStatus } from '../watch-health.js';
import { EtcdClientKeeper, ETCD_REPLACEMENT_REASONS, etcdClientOptions, type EtcdConnectionOptions, type EtcdReplacementReason, type JamKind } from './etcd-client.js';
import { LeaseReader, NEVER_EXPIRES } from './lease-reader.js';
import { EtcdLeaseWatch } from './lease-watch.js';
import { describeEtcdLiveness, etcdLivenessTimings, type EtcdLivenessTimings } from './liveness.js';
import { EtcdLivenessProbe } from './liveness-probe.js';

export { DEFAULT_ETCD_ENDPOINTS, etcdClientOptions, splitEndpoints } from './etcd-client.js';
export { NEVER_EXPIRES } from './lease-reader.js';

export const DEFAULT_ETCD_PREFIX = '/coreos.com/network';
export const DEFAULT_SUBNET_TTL_SECONDS = 24 * 60 * 60;
/** Default period of the full re-list in etcd mode (jittered); kube mode's resync is 5 min too. */
export const DEFAULT_ETCD_RELIST_MS = 5 * 60_000;

export interface EtcdManagerOptions extends EtcdConnectionOptions {
  prefix?: string;
  /** Lease TTL; 24 h like flannel. Tests shorten it. */
  ttlSeconds?: number;
  random?: RandomInt;
  /** First retry delay while the config is missing or etcd unreachable. */
  configRetryMs?: number;
  /** Per-request deadline, so a dead etcd produces an error (and a retry) instead of a hang. */
  requestTimeoutMs?: number;
  /** First delay before re-listing after a watch failure (doubles up to a third of the liveness bound). */
  watchRetryMs?: number;
  /** The liveness bound (-watch-liveness-seconds): a dead watch is replaced within it after a fault ends. */
  livenessMs?: number;
  /** Period of the full re-list (-etcd-relist-seconds), jittered; 0: none. */
  relistMs?: number;
  /**
   * Test seam: runs between a list and the watch that follows it, so a test can make changes (and
   * compact them away) exactly in the window the re-list logic must cover.
   */
  beforeWatchStart?: () => Promise<void>;
}

export class EtcdManager implements Manager {
  readonly name = 'etcd';
  private readonly prefix: string;
  private readonly ttlSeconds: number;
  private readonly random: RandomInt;
  private readonly configRetryMs: number;
  private readonly requestTimeoutMs: number;
  private readonly watchRetryMs: number;
  private readonly relistMs: number;
  private readonly timings: EtcdLivenessTimings;
  private readonly beforeWatchStart?: () => Promise<void>;
  private readonly keeper: EtcdClientKeeper;
  private readonly reader: LeaseReader;
  private readonly probe: EtcdLivenessProbe;
  private readonly health: WatchHealth<EtcdReplacementReason>;
  private readonly watches = new Set<EtcdLeaseWatch>();
  private livenessLogged = false;

  constructor(opts: EtcdManagerOptions) {
    this.prefix = (opts.prefix ?? DEFAULT_ETCD_PREFIX).replace(/\/+$/, '');
    this.ttlSeconds = opts.ttlSeconds ?? DEFAULT_SUBNET_TTL_SECONDS;
    this.random = opts.random ?? mathRandomInt;
    this.configRetryMs = opts.configRetryMs ?? 1000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.watchRetryMs = opts.watchRetryMs ?? 100;
    this.relistMs = opts.relistMs ?? DEFAULT_ETCD_RELIST_MS;
    this.timings = etcdLivenessTimings(opts.livenessMs ?? DEFAULT_LIVENESS_MS);
    this.beforeWatchStart = opts.beforeWatchStart;
    this.health = new WatchHealth('etcd', ETCD_REPLACEMENT_REASONS, this.timings.livenessMs);
    this.keeper = new EtcdClientKeeper(etcdClientOptions(opts), this.timings, this.health);
    this.reader = new LeaseReader(() => this.keeper.current, `${this.prefix}/subnets/`, this.ttlSeconds, this.requestTimeoutMs);
    this.probe = new EtcdLivenessProbe(this.keeper, `${this.prefix}/flannelts-liveness-probe`, this.timings, this.health, () =>
      [...this.watches].every((w) => w.steady),
    );
  }

  /** The current client; replaced as a whole when found dead, so do not keep it. */
  get client(): Etcd3 {
    return this.keeper.current;
  }

  /** Bounds a request in time; the etcd3 client would otherwise wait for a dead server indefinitely. */
  private timed<T>(what: string, p: Promise<T>): Promise<T> {
    return withDeadline(what, p, this.requestTimeoutMs);
  }

  async getNetworkConfig(signal?: AbortSignal): Promise<NetworkConfig> {
    const key = `${this.prefix}/config`;
    return waitForNetworkConfig(
      async () => {
        const text = await this.timed(`get ${key}`, this.client.get(key).string());
        if (text === null) {
          throw new Error(`${key} not found: flannel config not found in etcd store. Did you create your config using etcdv3 API?`);
        }
        return parseNetworkConfig(text);
      },
      { signal, initialDelayMs: this.configRetryMs },
    );
  }

  async acquireLease(attrs: LeaseAttrs, opts: AcquireOptions = {}): Promise<Lease> {
    // Re-read like flannel's AcquireLease: a config fixed since start-up applies to the new lease.
    const config = await this.getNetworkConfig(opts.signal);
    return acquireFromStore(this.storeOps(), config, attrs, opts, this.random);
  }

  async renewLease(lease: Lease): Promise<Lease> {
    const expiration = await this.writeLease(lease.subnet, lease.ipv6Subnet, lease.attrs, this.ttlSeconds);
    return { ...lease, expiration };
  }

  /** Grants a fresh etcd lease and puts the key on it (flannel's updateSubnet). ttl 0 → no etcd lease. */
  private async writeLease(subnet: IPNet | undefined, ipv6Subnet: IPNet | undefined, attrs: LeaseAttrs, ttl: number): Promise<Date> {
    const key = subnetKeyPath(this.prefix, subnet, ipv6Subnet);
    const value = encodeLeaseAttrs(attrs);
    if (ttl === 0) {
      await this.timed(`put ${key}`, this.client.put(key).value(value).exec());
      return NEVER_EXPIRES;
    }
    const grant = await this.timed('lease grant', this.client.leaseClient.leaseGrant({ TTL: ttl }));
    try {
      await this.timed(`put ${key}`, this.client.put(key).value(value).lease(grant.ID).exec());
    } catch (e) {
      await this.revoke(grant.ID);
      throw e;
    }
    return new Date(Date.now() + Number(grant.TTL) * 1000);
  }

  private async revoke(id: string): Promise<void> {
    try {
      await this.timed('lease revoke', this.client.leaseClient.leaseRevoke({ ID: id }));
    } catch (e) {
      log.error(`revoking etcd lease ${id}: ${(e as Error).message}`);
    }
  }

  private storeOps(): LeaseStoreOps {
    return {
      list: async () => {
        const { leases, occupied } = await this.reader.list();
        return [...[...leases.values()].map((k) => k.lease), ...occupied];
      },
      createIfAbsent: async (subnet, ipv6Subnet, attrs) => {
        const key = subnetKeyPath(this.prefix, subnet, ipv6Subnet);
        const grant = await this.timed('lease grant', this.client.leaseClient.leaseGrant({ TTL: this.ttlSeconds }));
        let succeeded: boolean;
        try {
          const txn = this.client
            .if(key, 'Version', '==', 0)
            .then(this.client.put(key).value(encodeLeaseAttrs(attrs)).lease(grant.ID))
            .commit();
          succeeded = (await this.timed(`create ${key}`, txn)).succeeded;
        } catch (e) {
          await this.revoke(grant.ID);
          throw e;
        }
        if (!succeeded) {
          await this.revoke(grant.ID);
          return undefined;
        }
        const lease: Lease = { attrs, expiration: new Date(Date.now() + Number(grant.TTL) * 1000) };
        if (subnet) lease.subnet = subnet;
        if (ipv6Subnet) lease.ipv6Subnet = ipv6Subnet;
        return lease;
      },
      reattach: async (lease, attrs) => {
        // A key without an etcd lease is a reservation; flannel keeps it without a TTL.
        const ttl = lease.expiration.getTime() >= NEVER_EXPIRES.getTime() ? 0 : this.ttlSeconds;
        const expiration = await this.writeLease(lease.subnet, lease.ipv6Subnet, attrs, ttl);
        return { ...lease, attrs, expiration };
      },
      remove: async (lease) => {
        const key = subnetKeyPath(this.prefix, lease.subnet, lease.ipv6Subnet);
        await this.timed(`delete ${key}`, this.client.delete().key(key).exec());
      },
    };
  }

  async watchLeases(onEvents: (events: LeaseEvent[]) => void): Promise<LeaseWatch> {
    if (!this.livenessLogged) {
      this.livenessLogged = true;
      log.info(describeEtcdLiveness(this.timings, this.relistMs));
    }
    const w = await EtcdLeaseWatch.start({
      keeper: this.keeper,
      reader: this.reader,
      health: this.health,
      timings: this.timings,
      relistMs: this.relistMs,
      retryMs: this.watchRetryMs,
      onEvents,
      beforeWatchStart: this.beforeWatchStart,
    });
    this.watches.add(w);
    this.probe.start();
    return {
      snapshot: w.snapshot,
      close: async () => {
        await w.close();
        this.watches.delete(w);
        if (this.watches.size === 0) this.probe.stop();
      },
    };
  }

  watchStatus(): WatchStatus | undefined {
    const s = this.health.snapshot();
    return s.relists > 0 ? s : undefined;
  }

  /** TEST HOOK: jams the library's watch stream (see EtcdClientKeeper.jamForTest and docs/reliability.md). */
  jamWatchStreamForTest(kind: JamKind): Promise<void> {
    return this.keeper.jamForTest(kind);
  }

  /** TEST HOOK: every watch runs its periodic re-list now; resolves when they are applied. */
  async relistNowForTest(): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.relistNow()));
  }

  async close(): Promise<void> {
    this.probe.stop();
    await Promise.all([...this.watches].map((w) => w.close()));
    this.watches.clear();
    this.keeper.close();
  }
}
