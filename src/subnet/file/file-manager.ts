// FileManager: the embedded lease store for one-host labs (flag -subnet-store-dir). A directory holds
// `config` (net-conf.json) and one file per lease named like the etcd key (`198.19.90.0-24`) holding
// flannel's lease JSON plus "Expiration". Several daemon processes share the directory, so:
//  - creation is create-if-absent via link(tmp, final), which fails with EEXIST atomically;
//  - replacing a file that is not ours (reclaiming an expired lease) and renewing ours happen under
//    the directory lock (dir-lock.ts);
//  - the watch combines fs.watch (fast) with a periodic re-scan (fs.watch can miss events) and diffs.
import { linkSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { parseNetworkConfig } from '../../config/netconf.js';
import type { NetworkConfig } from '../../config/types.js';
import { mathRandomInt } from '../../ip/cidr.js';
import type { RandomInt } from '../../ip/cidr.js';
import type { IPNet } from '../../ip/types.js';
import { formatCIDR } from '../../ip/cidr.js';
import { log, RateLimitedLog } from '../../log.js';
import { acquireFromStore, isOwnLease } from '../allocate.js';
import type { LeaseStoreOps } from '../allocate.js';
import { waitForNetworkConfig } from '../config-wait.js';
import { makeSubnetKey } from '../lease.js';
import { writeFileAtomic } from '../subnetenv.js';
import type { AcquireOptions, Lease, LeaseAttrs, LeaseEvent, LeaseWatch, Manager } from '../types.js';
import { WatchHealth, type WatchStatus } from '../watch-health.js';
import { DirLock } from './dir-lock.js';
import { decodeLeaseFile, diffScans, encodeLeaseFile, uniqueSuffix, writeFileAtomicAt, type ScanEntry } from './lease-file.js';

export const DEFAULT_LEASE_TTL_MS = 24 * 60 * 60 * 1000;
const LOCK_NAME = '.lock';

export interface FileManagerOptions {
  dir: string;
  /** Lease lifetime; 24 h like flannel's etcd leases. Tests shorten it. */
  ttlMs?: number;
  /** Re-scan period of the watch (fs.watch alone can miss changes). */
  rescanIntervalMs?: number;
  /**
   * fs.watch notifications within this window share one re-scan. Every lease write is several
   * notifications (temp file, rename), and a re-scan per notification saturated the daemon at
   * 100 lease changes/s with 1,000 leases (test/netns/lease-churn.test.ts).
   */
  watchCoalesceMs?: number;
  /** How long to wait for the lock before giving up. */
  lockTimeoutMs?: number;
  now?: () => number;
  random?: RandomInt;
  /** Retry pacing for a missing config. */
  configRetryMs?: number;
}

function errnoCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

export class FileManager implements Manager {
  readonly name = 'file';
  private readonly dir: string;
  private readonly ttlMs: number;
  private readonly rescanIntervalMs: number;
  private readonly watchCoalesceMs: number;
  /** Parsed lease files by name, valid while inode, mtime and size are unchanged (writes are renames). */
  private readonly readCache = new Map<string, { ino: number; mtimeMs: number; size: number; entry: ScanEntry }>();
  private readonly lock: DirLock;
  private readonly now: () => number;
  private readonly random: RandomInt;
  private readonly configRetryMs: number;
  private readonly badFileLog = new RateLimitedLog(5, 60_000);
  private readonly watches = new Set<LeaseWatch>();
  /** The store is re-scanned every rescanIntervalMs: that is its liveness bound; nothing is ever replaced. */
  private health?: WatchHealth<never>;
  private configCache?: NetworkConfig;

  constructor(opts: FileManagerOptions) {
    this.dir = opts.dir;
    this.ttlMs = opts.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    this.rescanIntervalMs = opts.rescanIntervalMs ?? 1000;
    this.watchCoalesceMs = opts.watchCoalesceMs ?? 50;
    this.lock = new DirLock(join(this.dir, LOCK_NAME), opts.lockTimeoutMs ?? 10_000);
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? mathRandomInt;
    this.configRetryMs = opts.configRetryMs ?? 1000;
    mkdirSync(this.dir, { recursive: true });
  }

  /** Writes the store's net-conf.json (for labs and tests); validated first so a bad config is never stored. */
  static writeConfig(dir: string, json: string): void {
    parseNetworkConfig(json);
    writeFileAtomic(join(dir, 'config'), json);
  }

  async getNetworkConfig(signal?: AbortSignal): Promise<NetworkConfig> {
    const path = join(this.dir, 'config');
    const config = await waitForNetworkConfig(
      async () => {
        let text: string;
        try {
          text = readFileSync(path, 'utf8');
        } catch (e) {
          throw new Error(errnoCode(e) === 'ENOENT' ? `${path} does not exist: write net-conf.json there` : `reading ${path}: ${(e as Error).message}`);
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
    return acquireFromStore(this.storeOps(config), config, attrs, opts, this.random);
  }

  async renewLease(lease: Lease): Promise<Lease> {
    const config = this.configCache ?? (await this.getNetworkConfig());
    const name = makeSubnetKey(lease.subnet, lease.ipv6Subnet);
    return this.lock.run(() => {
      const current = this.readLease(name);
      // Renewing a lease someone else now holds would steal it back; report the loss instead.
      if (current && !isOwnLease(config, current.lease, lease.attrs)) {
        throw new Error(`lease ${name} is now held by another node; acquire a new lease`);
      }
      const expiration = new Date(this.now() + this.ttlMs);
      this.replaceFile(name, encodeLeaseFile(lease.attrs, expiration));
      return { ...lease, expiration };
    });
  }

  async watchLeases(onEvents: (events: LeaseEvent[]) => void): Promise<LeaseWatch> {
    let known = this.scan();
    const health = (this.health ??= new WatchHealth<never>('file', [], this.rescanIntervalMs));
    health.relisted();
    health.confirm(true);
    let closed = false;
    let scanning = false;
    let again = false;
    const rescan = (): void => {
      if (closed) return;
      if (scanning) {
        again = true;
        return;
      }
      scanning = true;
      try {
        do {
          again = false;
          const next = this.scan();
          const events = diffScans(known, next);
          known = next;
          health.relisted();
          health.confirm(true);
          if (events.length > 0) health.event();
          if (events.length > 0 && !closed) onEvents(events);
        } while (again && !closed);
      } catch (e) {
        health.confirm(false);
        log.error(`file store watch: re-scan of ${this.dir} failed: ${(e as Error).message}`);
      } finally {
        scanning = false;
      }
    };
    let pending: NodeJS.Timeout | undefined;
    const soon = (): void => {
      if (pending || closed) return;
      pending = setTimeout(() => {
        pending = undefined;
        rescan();
      }, this.watchCoalesceMs);
      pending.unref();
    };
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(this.dir, { persistent: false }, soon);
      watcher.on('error', (e) => log.warning(`file store watch: fs.watch on ${this.dir} failed (${e.message}); relying on periodic re-scan`));
    } catch (e) {
      log.warning(`file store watch: fs.watch unavailable on ${this.dir} (${(e as Error).message}); relying on periodic re-scan`);
    }
    // Also catches expirations, which change no file.
    const timer = setInterval(rescan, this.rescanIntervalMs);
    timer.unref();
    const handle: LeaseWatch = {
      snapshot: [...known.values()].map((e) => e.lease),
      close: async () => {
        closed = true;
        clearInterval(timer);
        if (pending) clearTimeout(pending);
        watcher?.close();
        this.watches.delete(handle);
      },
    };
    this.watches.add(handle);
    return handle;
  }

  watchStatus(): WatchStatus | undefined {
    return this.health?.snapshot();
  }

  async close(): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.close()));
  }

  /** Live leases by file name. Malformed files are logged (rate-limited) and skipped. */
  private scan(): Map<string, ScanEntry> {
    const out = new Map<string, ScanEntry>();
    const names = new Set<string>();
    for (const name of readdirSync(this.dir)) {
      if (name.startsWith('.') || name === 'config') continue;
      names.add(name);
      const entry = this.readLease(name);
      if (entry && entry.lease.expiration.getTime() > this.now()) out.set(name, entry);
    }
    for (const name of this.readCache.keys()) if (!names.has(name)) this.readCache.delete(name);
    return out;
  }

  /** One lease file; undefined when absent or malformed (logged). */
  private readLease(name: string): ScanEntry | undefined {
    let text: string;
    let ino: number;
    let mtimeMs: number;
    let size: number;
    try {
      // A stat is much cheaper than read + JSON decode, and a re-scan of 1,000 leases is mostly unchanged.
      // Plain numbers compared in place: this runs for every lease file every second, and a bigint stat
      // plus a stamp string per file was most of the garbage the daemon made at 1,000 leases. mtimeMs
      // keeps sub-microsecond resolution, and every write is a rename to a new inode anyway.
      const path = join(this.dir, name);
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st) return undefined;
      ({ ino, mtimeMs, size } = st);
      const hit = this.readCache.get(name);
      if (hit && hit.ino === ino && hit.mtimeMs === mtimeMs && hit.size === size) return hit.entry;
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') this.badFileLog.warning(`file store: cannot read lease file ${name}: ${(e as Error).message}; skipping`);
      return undefined;
    }
    try {
      const entry = { lease: decodeLeaseFile(name, text), text };
      // If the file changed between stat and read, the next stat differs and it is read again.
      this.readCache.set(name, { ino, mtimeMs, size, entry });
      return entry;
    } catch (e) {
      this.badFileLog.warning(`file store: ignoring malformed lease file ${join(this.dir, name)}: ${(e as Error).message}`);
      return undefined;
    }
  }

  private tempPath(name: string): string {
    return join(this.dir, `.${name}.${uniqueSuffix()}`);
  }

  /** Atomically replaces (or creates) a lease file. */
  private replaceFile(name: string, text: string): void {
    const tmp = this.tempPath(name);
    try {
      writeFileAtomicAt(tmp, text);
      renameSync(tmp, join(this.dir, name));
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /** Creates the file only if absent; false if it exists. */
  private createFile(name: string, text: string): boolean {
    const tmp = this.tempPath(name);
    try {
      writeFileAtomicAt(tmp, text);
      linkSync(tmp, join(this.dir, name));
      return true;
    } catch (e) {
      if (errnoCode(e) === 'EEXIST') return false;
      throw e;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  private storeOps(config: NetworkConfig): LeaseStoreOps {
    return {
      list: async () => [...this.scan().values()].map((e) => e.lease),
      createIfAbsent: async (subnet, ipv6Subnet, attrs) => this.createLease(subnet, ipv6Subnet, attrs),
      reattach: async (lease, attrs) => {
        const name = makeSubnetKey(lease.subnet, lease.ipv6Subnet);
        return this.lock.run(() => {
          const current = this.readLease(name);
          if (current && !isOwnLease(config, current.lease, attrs)) throw new Error(`lease ${name} changed hands while re-attaching; retry`);
          const expiration = new Date(this.now() + this.ttlMs);
          this.replaceFile(name, encodeLeaseFile(attrs, expiration));
          return { ...lease, attrs, expiration };
        });
      },
      remove: async (lease) => {
        await this.lock.run(() => rmSync(join(this.dir, makeSubnetKey(lease.subnet, lease.ipv6Subnet)), { force: true }));
      },
    };
  }

  private async createLease(subnet: IPNet | undefined, ipv6Subnet: IPNet | undefined, attrs: LeaseAttrs): Promise<Lease | undefined> {
    const name = makeSubnetKey(subnet, ipv6Subnet);
    const expiration = new Date(this.now() + this.ttlMs);
    const text = encodeLeaseFile(attrs, expiration);
    const lease: Lease = { attrs, expiration };
    if (subnet) lease.subnet = subnet;
    if (ipv6Subnet) lease.ipv6Subnet = ipv6Subnet;
    // A dual-stack file is named by both subnets, so link()'s EEXIST guards only the pair: a node that
    // drew the same IPv4 subnet with another IPv6 one (or the other way round) would get it as well.
    // Dual-stack creation therefore looks at every live lease, under the lock.
    if (subnet && ipv6Subnet) return this.lock.run(() => (this.heldElsewhere(name, subnet, ipv6Subnet) ? undefined : this.createOrReclaim(name, text, lease)));
    if (this.createFile(name, text)) return lease;
    return this.lock.run(() => this.reclaim(name, text, lease));
  }

  /** Whether a live lease under another name holds either subnet. */
  private heldElsewhere(name: string, subnet: IPNet, ipv6Subnet: IPNet): boolean {
    const [v4, v6] = [formatCIDR(subnet), formatCIDR(ipv6Subnet)];
    for (const [other, { lease }] of this.scan()) {
      if (other !== name && ((lease.subnet && formatCIDR(lease.subnet) === v4) || (lease.ipv6Subnet && formatCIDR(lease.ipv6Subnet) === v6))) return true;
    }
    return false;
  }

  /** Under the lock: creates the file, or reclaims it when the lease in it is expired or unreadable. */
  private createOrReclaim(name: string, text: string, lease: Lease): Lease | undefined {
    return this.createFile(name, text) ? lease : this.reclaim(name, text, lease);
  }

  /**
   * Under the lock: the file exists; if it is expired or garbage the subnet is free and is reclaimed,
   * re-checked here because another process may have reclaimed or renewed it meanwhile.
   */
  private reclaim(name: string, text: string, lease: Lease): Lease | undefined {
    const current = this.readLease(name);
    if (current && current.lease.expiration.getTime() > this.now()) return undefined;
    log.info(`file store: reclaiming ${current ? 'expired' : 'unreadable'} lease file ${name}`);
    this.replaceFile(name, text);
    return lease;
  }
}

