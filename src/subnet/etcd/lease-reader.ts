// Reading flannel's leases from etcd: one range request for every key under <prefix>/subnets/, and
// the expiration of each key from its etcd lease's TTL. TTLs are remembered per key and revision, so a
// re-list asks only for keys that changed since the last read: at 1,000 nodes re-listing every few
// minutes, one TTL request per lease per node per re-list would be a million requests per period.
import type { Etcd3, IKeyValue } from 'etcd3';
import { log, RateLimitedLog } from '../../log.js';
import { withDeadline } from '../../util/timeout.js';
import { decodeLeaseAttrs, parseSubnetKey } from '../lease.js';
import type { Lease } from '../types.js';

/** Expiration of a key written without an etcd lease (flannel's "reservation"): never. */
export const NEVER_EXPIRES = new Date(8.64e15);

export interface KnownLease {
  lease: Lease;
  modRevision: string;
}

export interface LeaseList {
  leases: Map<string, KnownLease>;
  /** Well-named keys whose value is not a lease: their subnets still count as taken. */
  occupied: Lease[];
  /** The etcd revision the list was read at. */
  revision: string;
}

interface CachedExpiry {
  modRevision: string;
  leaseId: string;
  expiration: Date;
}

export class LeaseReader {
  private readonly badLeaseLog = new RateLimitedLog(5, 60_000);
  /** Key -> the expiration read for its current revision and etcd lease. */
  private readonly expiryCache = new Map<string, CachedExpiry>();

  constructor(
    private readonly client: () => Etcd3,
    readonly subnetsPrefix: string,
    private readonly ttlSeconds: number,
    private readonly requestTimeoutMs: number,
  ) {}

  /** Decodes one key/value; undefined (logged, rate-limited) for anything not in flannel's format. */
  decode(kv: IKeyValue, expiration: Date): Lease | undefined {
    const key = kv.key.toString();
    const rest = key.slice(this.subnetsPrefix.length);
    const parsed = parseSubnetKey(rest);
    if (!parsed || rest.includes('/')) {
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

  /**
   * Expirations of these keys (a watch's puts or a list's keys): from the cache when the key's revision
   * and etcd lease are the ones already looked up, else one TTL query per distinct etcd lease.
   */
  async expirations(kvs: readonly IKeyValue[], timeoutMs = this.requestTimeoutMs): Promise<Map<string, Date>> {
    const out = new Map<string, Date>();
    const toAsk = new Map<string, string[]>();
    for (const kv of kvs) {
      const key = kv.key.toString();
      if (kv.lease === '0') {
        out.set(key, NEVER_EXPIRES);
        continue;
      }
      const cached = this.expiryCache.get(key);
      if (cached && cached.modRevision === kv.mod_revision && cached.leaseId === kv.lease) {
        out.set(key, cached.expiration);
        continue;
      }
      toAsk.set(kv.lease, [...(toAsk.get(kv.lease) ?? []), key]);
    }
    const byLease = new Map<string, Date>();
    /** Leases whose TTL could not be read: a guess is used now and not remembered. */
    const guessed = new Set<string>();
    await Promise.all(
      [...toAsk.keys()].map(async (id) => {
        try {
          const r = await withDeadline('lease ttl', this.client().leaseClient.leaseTimeToLive({ ID: id }), timeoutMs);
          byLease.set(id, new Date(Date.now() + Math.max(0, Number(r.TTL)) * 1000));
        } catch (e) {
          log.warning(`Could not read ttl of etcd lease ${id}: ${(e as Error).message}`);
          byLease.set(id, new Date(Date.now() + this.ttlSeconds * 1000));
          guessed.add(id);
        }
      }),
    );
    for (const kv of kvs) {
      const key = kv.key.toString();
      const expiration = byLease.get(kv.lease);
      if (!expiration) continue;
      out.set(key, expiration);
      if (!guessed.has(kv.lease)) this.expiryCache.set(key, { modRevision: kv.mod_revision, leaseId: kv.lease, expiration });
    }
    return out;
  }

  /** A key is gone (watch delete): nothing to remember for it. */
  forget(key: string): void {
    this.expiryCache.delete(key);
  }

  /** All well-formed leases by key, and the revision of that read: one range request, TTLs of changed keys only. */
  async list(timeoutMs = this.requestTimeoutMs): Promise<LeaseList> {
    const res = await withDeadline(`list ${this.subnetsPrefix}`, this.client().getAll().prefix(this.subnetsPrefix).exec(), timeoutMs);
    const exp = await this.expirations(res.kvs, timeoutMs);
    const present = new Set(res.kvs.map((kv) => kv.key.toString()));
    for (const key of this.expiryCache.keys()) if (!present.has(key)) this.expiryCache.delete(key);
    const leases = new Map<string, KnownLease>();
    const occupied: Lease[] = [];
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      const expiration = exp.get(key) ?? NEVER_EXPIRES;
      const lease = this.decode(kv, expiration);
      if (lease) {
        leases.set(key, { lease, modRevision: kv.mod_revision });
        continue;
      }
      // A well-named key with a bad value still blocks creation (version != 0): count its subnet as
      // taken so allocation does not keep racing for it. It is never routed to.
      const parsed = parseSubnetKey(key.slice(this.subnetsPrefix.length));
      if (parsed) occupied.push({ ...parsed, attrs: { backendType: '' }, expiration });
    }
    return { leases, occupied, revision: res.header.revision };
  }
}
