// The WireGuard part of `flannelctl status` and /metrics: every peer of the backend's devices as `wg
// show` shows it (endpoint, allowed IPs, latest handshake, bytes) and, for our userspace devices, the
// protocol's counters by reason.
import type { NetworkStats } from './backend/types.js';

export interface WireguardPeerStatus {
  device: string;
  publicKey: string;
  endpoint?: string;
  allowedIPs: string[];
  /** ISO time of the latest handshake, or "never". */
  latestHandshake: string;
  rxBytes: number;
  txBytes: number;
  persistentKeepalive: number;
}

export interface WireguardStatus {
  devices: Array<{ name: string; kind: string }>;
  peers: WireguardPeerStatus[];
  /** Userspace devices: what became of every datagram and packet, by reason (summed over devices). */
  counters?: Record<string, number>;
}

export function wireguardStatus(s: NetworkStats): WireguardStatus | undefined {
  if (!s.wireguard) return undefined;
  return {
    devices: s.devices ?? [],
    peers: s.wireguard.peers.map((p) => ({
      device: p.device,
      publicKey: p.publicKey,
      ...(p.endpoint ? { endpoint: p.endpoint } : {}),
      allowedIPs: p.allowedIPs,
      latestHandshake: p.lastHandshakeMs > 0 ? new Date(p.lastHandshakeMs).toISOString() : 'never',
      rxBytes: p.rxBytes,
      txBytes: p.txBytes,
      persistentKeepalive: p.persistentKeepalive,
    })),
    ...(s.wireguard.counters ? { counters: s.wireguard.counters } : {}),
  };
}
