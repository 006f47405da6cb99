// EtcdManager: flannel's etcd v3 lease store (pkg/subnet/etcd), same keys, JSON and TTL semantics, so
// our nodes and stock flanneld share one etcd. Watch: list, then watch from the list revision + 1;
// on compaction, error or disconnect we list again and emit only the difference.
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Etcd3 } from 'etcd3';
import type { IKeyValue, IOptions, Watcher } from 'etcd3';
import { parseNetworkConfig } from '../../config/netconf.js';
import type { NetworkConfig } from '../../config/types.js';
import { mathRandomInt } from '../../ip/cidr.js';
import type { RandomInt } from '../../ip/cidr.js';
import type { IPNet } from '../../ip/types.js';
import { log, RateLimitedLog } from '../../log.js';
import { acquireFromStore } from '../allocate.js';
import type { LeaseStoreOps } from '../allocate.js';
import { waitForNetworkConfig } from '../config-wait.js';
import { sleep } from '../../util/sleep.js';
import { decodeLeaseAttrs, encodeLeaseAttrs, parseSubnetKey, subnetKeyPath } from '../lease.js';
import type { AcquireOptions, Lease, LeaseAttrs, LeaseEvent, LeaseWatch, Manager } from '../types.js';

export const DEFAULT_ETCD_PREFIX = '/coreos.com/network';
export const DEFAULT_ETCD_ENDPOINTS = 'http://127.0.0.1:4001,http://127.0.0.1:2379';
export const DEFAULT_SUBNET_TTL_SECONDS = 24 * 60 * 60;
/** Expiration of a key written without an etcd lease (flannel's "reservation"): never. */
export const NEVER_EXPIRES = new Date(8.64e15);

export interface EtcdManagerOptions {
  /** Endpoints, as a list or flannel's comma-separated `-etcd-endpoints` text. */
  endpoints: string | readonly string[];
  prefix?: string;
  keyFile?: string;
  certFile?: string;
  caFile?: string;
  username?: string;
  password?: string;
  /** Lease TTL; 24 h like flannel. Tests shorten it. */
  ttlSeconds?: number;
  random?: RandomInt;
  /** First retry delay while the config is missing or etcd unreachable. */
  configRetryMs?: number;
  /** Per-request deadline, so a dead etcd produces an error (and a retry) instead of a hang. */
  requestTimeoutMs?: number;
  /** First delay before re-listing after a watch failure (doubles up to 5 s). */
  watchRetryMs?: number;
  /**
   * Test seam: runs between a list and the watch that follows it, so a test can make changes (and
   * compact them away) exactly in the window the re-list logic must cover.
   */
  beforeWatchStart?: () => Promise<void>;
}

export function splitEndpoints(endpoints: string | readonly string[]): string[] {
  const list = typeof endpoints === 'string' ? endpoints.split(',') : [...endpoints];
  return list.map((e) => e.trim()).filter((e) => e.length > 0);
}

/** etcd3 client options from flannel's flags; warns like flannel when TLS is off. */
export function etcdClientOptions(opts: EtcdManagerOptions): IOptions {
  const hosts = splitEndpoints(opts.endpoints);
  if (hosts.length === 0) throw new Error(`-etcd-endpoints ${JSON.stringify(opts.endpoints)} is empty: give e.g. http://127.0.0.1:2379`);
  const options: IOptions = { hosts, dialTimeout: 5000 };
  const read = (flag: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`${flag} ${path} cannot be read: ${(e as Error).message}`);
    }
  };
  const clientCert = Boolean(opts.keyFile && opts.certFile);
  if (clientCert || opts.caFile) {
    // flannel ignores -etcd-cafile without a client cert; we use it to verify the server anyway.
    options.credentials = {
      rootCertificate: opts.caFile ? read('-etcd-cafile', opts.caFile) : Buffer.from(rootCertificates.join('\n')),
      ...(clientCert && opts.keyFile && opts.certFile
        ? { privateKey: read('-etcd-keyfile', opts.keyFile), certChain: read('-etcd-certfile', opts.certFile) }
        : {}),
    };
  }
  if (!clientCert) log.warning('no certificate provided: connecting to etcd with http. This is insecure');
  if (opts.username) options.auth = { username: opts.username, password: opts.password ?? '' };
  return options;
}

interface KnownLease {
  lease: Lease;
  modRevision: string;
}

export class EtcdManager implements Manager {
  readonly name = 'etcd';
  readonly client: Etcd3;
  private readonly prefix: string;
  private readonly ttlSeconds: number;
  private readonly random: RandomInt;
  private readonly configRetryMs: number;
  private readonly requestTimeoutMs: number;
  private readonly watchRetryMs: number;
  private readonly beforeWatchStart?: () => Promise<void>;
  private readonly badLeaseLog = new RateLimitedLog(5, 60_000);
  private readonly watches = new Set<LeaseWatch>();
  private configCache?: NetworkConfig;

  constructor(opts: EtcdManagerOptions) {
    this.prefix = (opts.prefix ?? DEFAULT_ETCD_PREFIX).replace(/\/+$/, '');
    this.ttlSeconds = opts.ttlSeconds ?? DEFAULT_SUBNET_TTL_SECONDS;
    this.random = opts.random ?? mathRandomInt;
    this.configRetryMs = opts.configRetryMs ?? 1000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.watchRetryMs = opts.watchRetryMs ?? 100;
    this.beforeWatchStart = opts.beforeWatchStart;
    this.client = new Etcd3(etcdClientOptions(opts));
  }

  private get subnetsPrefix(): string {
    return `${this.prefix}/subnets/`;
  }

  /** Bounds a request in time; the etcd3 client would otherwise wait for a dead server indefinitely. */
  private async timed<T>(what: string, p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: etcd request timed out after ${this.requestTimeoutMs} ms`)), this.requestTimeoutMs);
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async getNetworkConfig(signal?: AbortSignal): Promise<NetworkConfig> {
    const key = `${this.prefix}/config`;
    const config = await waitForNetworkConfig(
      async () => {
        const text = await this.timed(`get ${key}`, this.client.get(key).string());
        if (text === null) {
          throw new Error(`${key} not found: flannel config not found in etcd store. Did you create your config using etcdv3 API?`);
        }
        return parseNetworkConfig(text);
      },
      { signal, initialDelayMs: this.configRetryMs },
    );
    this.configCache = config;
    return config;
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
        const { leases, occupied } = await this.list();
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

  /** Decodes one key/value; undefined (logged, rate-limited) for anything not in flannel's format. */
  private decode(kv: IKeyValue, expiration: Date): Lease | undefined {
    const key = kv.key.toString();
    const parsed = parseSubnetKey(key.slice(this.subnetsPrefix.length));
    if (!parsed || key.slice(this.subnetsPrefix.length).includes('/')) {
      this.badLeaseLog.warning(`Ignoring bad subnet node: key ${key} is not <prefix>/subnets/<ip>-<len>`);
      return undefined;
    }
    try {
      const lease: Lease = { attrs: decodeLeaseAttrs(kv.value.toString()), expiration };
      if (parsed.subnet) lease.subnet = parsed.subnet;
      if (parsed.ipv6Subnet) lease.ipv6Subnet = parsed.ipv6Subnet;
      return lease;
    } catch (e) {
      this.badLeaseLog.warning(`Ignoring bad subnet node ${key}: ${(e as Error).message}`);
      return undefined;
    }
  }

  /** Expiration from the key's etcd lease (one TTL query per distinct lease, like flannel's getSubnets). */
  private async expirations(kvs: readonly IKeyValue[]): Promise<Map<string, Date>> {
    const ids = [...new Set(kvs.map((kv) => kv.lease).filter((id) => id !== '0'))];
    const out = new Map<string, Date>([['0', NEVER_EXPIRES]]);
    await Promise.all(
      ids.map(async (id) => {
        try {
          const r = await this.timed('lease ttl', this.client.leaseClient.leaseTimeToLive({ ID: id }));
          out.set(id, new Date(Date.now() + Math.max(0, Number(r.TTL)) * 1000));
        } catch (e) {
          log.warning(`Could not read ttl of etcd lease ${id}: ${(e as Error).message}`);
          out.set(id, new Date(Date.now() + this.ttlSeconds * 1000));
        }
      }),
    );
    return out;
  }

  /** All well-formed leases by key, and the revision of that read. */
  private async list(): Promise<{ leases: Map<string, KnownLease>; occupied: Lease[]; revision: string }> {
    const res = await this.timed(`list ${this.subnetsPrefix}`, this.client.getAll().prefix(this.subnetsPrefix).exec());
    const exp = await this.expirations(res.kvs);
    const leases = new Map<string, KnownLease>();
    const occupied: Lease[] = [];
    for (const kv of res.kvs) {
      const expiration = exp.get(kv.lease) ?? NEVER_EXPIRES;
      const lease = this.decode(kv, expiration);
      if (lease) {
        leases.set(kv.key.toString(), { lease, modRevision: kv.mod_revision });
        continue;
      }
      // A well-named key with a bad value still blocks creation (version != 0): count its subnet as
      // taken so allocation does not keep racing for it. It is never routed to.
      const parsed = parseSubnetKey(kv.key.toString().slice(this.subnetsPrefix.length));
      if (parsed) occupied.push({ ...parsed, attrs: { backendType: '' }, expiration });
    }
    return { leases, occupied, revision: res.header.revision };
  }

  async watchLeases(onEvents: (events: LeaseEvent[]) => void): Promise<LeaseWatch> {
    const first = await this.list();
    let known = first.leases;
    let closed = false;
    let watcher: Watcher | undefined;
    /** Bumped on every (re)start, so events from an abandoned watcher are ignored. */
    let generation = 0;
    let queue: Promise<void> = Promise.resolve();
    const deliver = (events: LeaseEvent[]): void => {
      if (events.length > 0 && !closed) onEvents(events);
    };

    /**
     * Forgets the current watcher. `cancel` false: the library has already dropped it (etcd cancelled
     * it, or it ended). Cancelling such a watcher again must not happen: etcd answers the cancel
     * request for a watch id the library no longer knows, and the library then throws inside its
     * stream handler, which stops every watch on the client's stream.
     */
    const dropWatcher = (cancel: boolean): void => {
      const w = watcher;
      watcher = undefined;
      // Cancelling a disconnected watcher can wait for a reconnect; never block on it.
      if (w && cancel) void w.cancel().catch(() => {});
    };

    const startWatch = async (fromRevision: string): Promise<void> => {
      const gen = ++generation;
      await this.beforeWatchStart?.();
      if (closed || gen !== generation) return;
      // watcher() rather than create(): listeners go on before the stream connects, so no response can
      // be emitted before we listen. Connection failures arrive as 'disconnected'/'error' below.
      const w = this.client.watch().prefix(this.subnetsPrefix).startRevision(fromRevision).watcher();
      watcher = w;
      w.on('data', (res) => {
        if (gen !== generation) return;
        // Serialised: TTL look-ups are async and events must stay in order.
        queue = queue.then(async () => {
          if (gen !== generation || closed) return;
          const puts = res.events.filter((ev) => ev.type === 'Put').map((ev) => ev.kv);
          const exp = await this.expirations(puts);
          const events: LeaseEvent[] = [];
          for (const ev of res.events) {
            const key = ev.kv.key.toString();
            const before = known.get(key);
            if (ev.type === 'Put') {
              const lease = this.decode(ev.kv, exp.get(ev.kv.lease) ?? NEVER_EXPIRES);
              if (lease) {
                known.set(key, { lease, modRevision: ev.kv.mod_revision });
                events.push({ type: 'added', lease });
              } else if (before) {
                // A valid lease overwritten with garbage is gone as far as routing is concerned.
                known.delete(key);
                events.push({ type: 'removed', lease: before.lease });
              }
            } else if (before) {
              known.delete(key);
              events.push({ type: 'removed', lease: before.lease });
            }
          }
          deliver(events);
        });
      });
      const onFailure = (why: string, stillAttached: boolean): void => {
        if (gen !== generation || closed) return;
        generation++;
        dropWatcher(stillAttached);
        log.warning(`etcd watch on ${this.subnetsPrefix} interrupted (${why}); listing again and resuming`);
        queue = queue.then(() => resync());
      };
      // etcd 3.4 cancels a watch whose start revision was compacted with an empty reason, and the
      // client library drops compact_revision; say what it most likely was.
      // 'error' (etcd cancelled the watch) and 'end' (our cancel completed) come after the library has
      // removed the watcher; after 'disconnected' it would re-attach it on reconnect unless cancelled.
      w.on('error', (e: Error) => onFailure(/canceled:\s*$/.test(e.message) ? `${e.message.trim()} (start revision probably compacted)` : e.message, false));
      w.on('disconnected', (e: Error) => onFailure(`disconnected: ${e.message}`, true));
      w.on('end', () => onFailure('watch stream ended', false));
    };

    /** Lists until it works, emits the difference from what we knew, then watches from there. */
    const resync = async (): Promise<void> => {
      for (let delay = this.watchRetryMs; !closed; delay = Math.min(delay * 2, 5000)) {
        try {
          const now = await this.list();
          if (closed) return;
          const events: LeaseEvent[] = [];
          for (const [key, old] of known) if (!now.leases.has(key)) events.push({ type: 'removed', lease: old.lease });
          for (const [key, cur] of now.leases) {
            if (known.get(key)?.modRevision !== cur.modRevision) events.push({ type: 'added', lease: cur.lease });
          }
          known = now.leases;
          deliver(events);
          await startWatch((BigInt(now.revision) + 1n).toString());
          return;
        } catch (e) {
          log.error(`etcd watch: re-list of ${this.subnetsPrefix} failed: ${(e as Error).message}; retrying in ${delay} ms`);
          await sleep(delay);
        }
      }
    };

    await startWatch((BigInt(first.revision) + 1n).toString());
    const handle: LeaseWatch = {
      snapshot: [...first.leases.values()].map((k) => k.lease),
      close: async () => {
        closed = true;
        generation++;
        dropWatcher(true);
        this.watches.delete(handle);
      },
    };
    this.watches.add(handle);
    return handle;
  }

  async close(): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.close()));
    this.client.close();
  }
}
