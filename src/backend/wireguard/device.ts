// "A WireGuard device" as the backend sees it, whichever implements it: the kernel's (rtnetlink +
// the generic-netlink wireguard family) or our userspace one (the native engine on a TUN, part of
// issue 28's second half). Configuration mirrors what flannel asks of wgctrl: private key and listen
// port with ReplacePeers, then one peer per lease with ReplaceAllowedIPs, and removal by key.
import type { IPNet } from '../../ip/index.js';
import { log } from '../../log.js';
import type { CaptureSource } from '../../capture/session.js';
import type { EngineStats } from '../../native/engine.js';
import type { WgCounters } from '../../native/wireguard.js';

export interface WgPeerConfig {
  /** Base64, as in the lease. */
  publicKey: string;
  /** Base64 PSK, on every peer when the net-conf has one. */
  presharedKey?: string;
  /** "ip:port" or "[ip6]:port"; absent: learnt when the peer initiates. */
  endpoint?: string;
  /** Seconds, 0 = off. */
  persistentKeepalive: number;
  /** Replaces the peer's allowed IPs. */
  allowedIPs: IPNet[];
}

/** What status and `wg show` report of a peer. */
export interface WgPeerStatus {
  publicKey: string;
  /** "ip:port" or "[ip6]:port" where the peer is now (it roams); absent: not known yet. */
  endpoint?: string;
  /** The endpoint as configured, where the device tells it apart from the current one (userspace). */
  configuredEndpoint?: string;
  allowedIPs: IPNet[];
  persistentKeepalive: number;
  /** Milliseconds since the epoch; 0 = never. */
  lastHandshakeMs: number;
  rxBytes: number;
  txBytes: number;
}

export interface WgDeviceSpec {
  name: string;
  mtu: number;
  privateKey: Buffer;
  listenPort: number;
  /**
   * Another UDP port the device should also answer on: flannel's leases advertise ListenPortV6 for
   * IPv6 even when the one device of the single-device modes listens on ListenPort only.
   */
  alsoListenPort?: number;
  /** Whether the device needs an IPv6 socket (peers with IPv6 endpoints). */
  ipv6?: boolean;
}

export interface WgDevice {
  readonly name: string;
  readonly index: number;
  readonly kind: 'kernel' | 'userspace';
  /** Adds or updates a peer (its allowed IPs replaced). */
  setPeer(p: WgPeerConfig): Promise<void>;
  removePeer(publicKey: string): Promise<void>;
  peers(): Promise<WgPeerStatus[]>;
  /** The same, read at once (status and /metrics read synchronously; both devices can). */
  peersNow(): WgPeerStatus[];
  /** Deletes the device (flannel removes it on shutdown). */
  close(): Promise<void>;
  /** Userspace: the engine's counters and the protocol's, read on demand. */
  dataPlane?(): { engine: EngineStats; wireguard: WgCounters };
  /** Userspace: the engine's capture tap (`flannelctl capture`). */
  readonly capture?: CaptureSource;
}

/** Creates a device (replacing one of that name left from an earlier run), configured with key and port. */
export interface WgDeviceFactory {
  create(spec: WgDeviceSpec): Promise<WgDevice>;
}

export interface WgDevicePlatform {
  kernel?: WgDeviceFactory;
  userspace?: WgDeviceFactory;
  /** -wireguard-userspace: userspace WireGuard on this node even when the kernel has WireGuard. */
  forceUserspace?: boolean;
}

/**
 * A kernel without WireGuard: rtnetlink answers EOPNOTSUPP for the unknown link kind "wireguard"
 * (what `ip link add type wireguard` reports as "Unknown device type").
 */
export function isKernelWithoutWireguard(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return code === 'EOPNOTSUPP' || code === 'ENOTSUP';
}

/** Kernel WireGuard when the kernel has it, else (or with -wireguard-userspace) ours, saying which and why. */
export async function createWgDevice(spec: WgDeviceSpec, p: WgDevicePlatform): Promise<WgDevice> {
  if (p.forceUserspace || !p.kernel) {
    if (!p.userspace) throw new Error(`cannot create ${spec.name}: no userspace WireGuard in this build and ${p.kernel ? '-wireguard-userspace is set' : 'no kernel path'}`);
    log.info(`wireguard: ${spec.name} is a userspace WireGuard device (${p.forceUserspace ? '-wireguard-userspace' : 'no kernel path'})`);
    return p.userspace.create(spec);
  }
  try {
    return await p.kernel.create(spec);
  } catch (e) {
    if (!isKernelWithoutWireguard(e) || !p.userspace) {
      throw new Error(`could not create wireguard interface ${spec.name}: ${(e as Error).message}`);
    }
    log.warning(`the kernel cannot create WireGuard devices (${(e as Error).message}); ${spec.name} falls back to userspace WireGuard`);
    return p.userspace.create(spec);
  }
}
