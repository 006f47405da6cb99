// The Backend contract: TypeScript owns leases and routes; a backend turns them into devices,
// routes and data-plane tables.
import type { NetworkConfig } from '../config/types.js';
import type { IPAddr } from '../ip/types.js';
import type { Lease, LeaseEvent } from '../subnet/types.js';
import type { CaptureSource } from '../capture/session.js';
import type { EngineStats } from '../native/engine.js';

/** The external interface picked by -iface/-iface-regex/-iface-can-reach or the default route. */
export interface ExternalInterface {
  name: string;
  index: number;
  mtu: number;
  /** Address on the interface (v4), used for binding. */
  ifaceAddr?: IPAddr;
  ifaceAddrV6?: IPAddr;
  /** Address advertised to peers: -public-ip or the interface address. */
  publicIP?: IPAddr;
  publicIPv6?: IPAddr;
}

export interface BackendContext {
  config: NetworkConfig;
  extIface: ExternalInterface;
  /**
   * The VtepMACs the lease store remembers for this node (kube: the node annotations; flannel's
   * GetStoredMacAddresses), asked only by a backend that creates devices; absent or {} when none.
   */
  storedMacs?: () => Promise<{ v4?: string; v6?: string }>;
}

/** First phase: before the lease exists the backend says what goes into it (type, backend data). */
export interface Backend {
  readonly type: string;
  /** Backend data for the lease attrs (undefined for udp, as flannel writes it). */
  backendData(): unknown;
  backendV6Data(): unknown;
  /** Second phase: with the lease held, bring up devices and routes; returns the running network. */
  start(lease: Lease): Promise<RunningNetwork>;
}

/**
 * What a running network reports to `flannelctl status` and /metrics: one typed shape for every backend
 * (each fills what it has), with the engine's counters as the addon returns them.
 */
export interface NetworkStats {
  backend?: string;
  /** 'userspace' for the vxlan backend's userspace VTEP; the Mode for wireguard. */
  mode?: string;
  device?: string;
  deviceV6?: string;
  /** WireGuard: its devices and whether each is the kernel's or ours. */
  devices?: Array<{ name: string; kind: string }>;
  mtu?: number;
  port?: number;
  vni?: number;
  vtepMAC?: string;
  /** Peers with entries installed (kernel backends) or in the engine's table. */
  peers?: number;
  /** Kernel entries re-added or removed by reconcile passes, failed kernel calls, leases skipped. */
  repairs?: number;
  errors?: number;
  skippedLeases?: number;
  directPeers?: number;
  /** host-gw: peers not on our L2 segment (no route can reach them directly). */
  unreachablePeers?: number;
  /** The native engine's counters (udp, the userspace VXLAN VTEP, userspace WireGuard). */
  engine?: EngineStats;
  /** WireGuard: every peer of every device, and the userspace devices' protocol counters (summed). */
  wireguard?: { peers: WgPeerReport[]; counters?: Record<string, number> };
}

/** One WireGuard peer as status and /metrics show it (what `wg show` shows). */
export interface WgPeerReport {
  device: string;
  publicKey: string;
  /** Where the peer is now ("ip:port", "[ip6]:port"); absent: not known yet. */
  endpoint?: string;
  allowedIPs: string[];
  /** Milliseconds since the epoch; 0 = never. */
  lastHandshakeMs: number;
  rxBytes: number;
  txBytes: number;
  persistentKeepalive: number;
}

export interface RunningNetwork {
  /** MTU for pods (subnet.env FLANNEL_MTU). */
  readonly mtu: number;
  /** Applies lease events for other nodes (our own lease is filtered out by the daemon). */
  handle(events: LeaseEvent[]): Promise<void>;
  /** Re-adds missing entries and removes stale ones; returns how many repairs it made. */
  reconcile(leases: Lease[]): Promise<number>;
  /** Counters and state for status/metrics. */
  stats(): NetworkStats;
  /** Packet capture from inside the data plane (`flannelctl capture`); absent for kernel backends. */
  readonly capture?: CaptureSource;
  /** Tears down what start() created. */
  close(): Promise<void>;
}

export type BackendFactory = (ctx: BackendContext) => Promise<Backend>;
