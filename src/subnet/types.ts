// The subnet.Manager contract (flannel's pkg/subnet): every lease store implements it.
import type { NetworkConfig } from '../config/types.js';
import type { IPAddr, IPNet } from '../ip/types.js';
import type { WatchStatus } from './watch-health.js';

/** What a node advertises in its lease; serialised exactly as flannel's LeaseAttrs JSON. */
export interface LeaseAttrs {
  publicIP?: IPAddr;
  publicIPv6?: IPAddr;
  backendType: string;
  /** Backend-specific JSON (vxlan: {VNI, VtepMAC}); absent for udp, as flannel writes it. */
  backendData?: unknown;
  backendV6Data?: unknown;
}

export interface Lease {
  subnet?: IPNet;
  ipv6Subnet?: IPNet;
  attrs: LeaseAttrs;
  expiration: Date;
}

export type LeaseEvent = { type: 'added'; lease: Lease } | { type: 'removed'; lease: Lease };

export interface AcquireOptions {
  /** Subnets from the previous subnet.env: asked for again first, as flannel does. */
  previousSubnet?: IPNet;
  previousIPv6Subnet?: IPNet;
  signal?: AbortSignal;
}

export interface LeaseWatch {
  /** Leases that existed when the watch started (including our own). */
  readonly snapshot: Lease[];
  /** Stops the watch; no callbacks after it resolves. */
  close(): Promise<void>;
}

/** Addresses an operator pinned in the store (kube: node-public-ip / node-public-ipv6 annotations). */
export interface StoredPublicIP {
  publicIP?: string;
  publicIPv6?: string;
}

export interface Manager {
  /** Human name for logs: "etcd", "file", "kube". */
  readonly name: string;
  getNetworkConfig(signal?: AbortSignal): Promise<NetworkConfig>;
  acquireLease(attrs: LeaseAttrs, opts?: AcquireOptions): Promise<Lease>;
  /** Extends the lease's TTL; returns the lease with its new expiration. */
  renewLease(lease: Lease): Promise<Lease>;
  /**
   * Lists leases, then delivers changes as events in order. On compaction, reconnect or any doubt the
   * implementation lists again and emits the difference, so no event is lost.
   */
  watchLeases(onEvents: (events: LeaseEvent[]) => void | Promise<void>): Promise<LeaseWatch>;
  close(): Promise<void>;
  /**
   * flannel's GetStoredPublicIP (kube only): addresses that override -public-ip / -public-ipv6 before
   * the external interface is chosen. Empty when none or when the store cannot say.
   */
  getStoredPublicIP?(signal?: AbortSignal): Promise<StoredPublicIP>;
  /**
   * flannel's GetStoredMacAddresses (kube only): the VtepMACs our node's annotations advertise, reused
   * for a newly created vxlan device so peers' entries stay valid across a restart. Raw text, unchecked.
   */
  getStoredMacAddresses?(signal?: AbortSignal): Promise<{ v4?: string; v6?: string }>;
  /** flannel's CompleteLease (kube only): called once the network runs (NodeNetworkUnavailable=False). */
  completeLease?(lease: Lease, signal?: AbortSignal): Promise<void>;
  /** The lease watch's health for `flannelctl status` and /metrics; undefined before the first watch. */
  watchStatus?(): WatchStatus | undefined;
}
