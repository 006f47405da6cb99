// In-memory subnet.Manager test double: the daemon's loop is tested without etcd or files.
import { parseNetworkConfig } from '../../src/config/netconf.js';
import type { NetworkConfig } from '../../src/config/types.js';
import { formatCIDR, parseCIDR } from '../../src/ip/index.js';
import type { AcquireOptions, Lease, LeaseAttrs, LeaseEvent, LeaseWatch, Manager } from '../../src/subnet/types.js';

export class MemoryManager implements Manager {
  readonly name = 'memory';
  readonly leases = new Map<string, Lease>();
  private listeners = new Set<(e: LeaseEvent[]) => void>();
  configFailures = 0;
  renewFailures = 0;
  renewCalls = 0;
  closed = false;
  ttlMs = 24 * 3600_000;
  private next = 10;
  readonly config: NetworkConfig;

  constructor(netConf = '{"Network":"198.19.0.0/16","Backend":{"Type":"fake"}}') {
    this.config = parseNetworkConfig(netConf);
  }

  async getNetworkConfig(): Promise<NetworkConfig> {
    if (this.configFailures > 0) {
      this.configFailures--;
      throw new Error('store unreachable');
    }
    return this.config;
  }

  async acquireLease(attrs: LeaseAttrs, opts?: AcquireOptions): Promise<Lease> {
    const subnet = opts?.previousSubnet ?? parseCIDR(`198.19.${this.next++}.0/24`)!;
    const lease: Lease = { subnet, attrs, expiration: new Date(Date.now() + this.ttlMs) };
    this.put(lease);
    return lease;
  }

  async renewLease(lease: Lease): Promise<Lease> {
    this.renewCalls++;
    if (this.renewFailures > 0) {
      this.renewFailures--;
      throw new Error('etcd timeout');
    }
    const renewed = { ...lease, expiration: new Date(Date.now() + this.ttlMs) };
    this.leases.set(formatCIDR(lease.subnet!), renewed);
    return renewed;
  }

  /** Another node's lease appears (as a peer daemon would write it). */
  put(lease: Lease): void {
    this.leases.set(formatCIDR(lease.subnet!), lease);
    for (const l of this.listeners) l([{ type: 'added', lease }]);
  }

  remove(subnet: string): void {
    const lease = this.leases.get(subnet);
    if (!lease) return;
    this.leases.delete(subnet);
    for (const l of this.listeners) l([{ type: 'removed', lease }]);
  }

  async watchLeases(onEvents: (events: LeaseEvent[]) => void): Promise<LeaseWatch> {
    this.listeners.add(onEvents);
    return {
      snapshot: [...this.leases.values()],
      close: async () => {
        this.listeners.delete(onEvents);
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
