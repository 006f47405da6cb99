// The configuration of a userspace WireGuard device as wireguard-go keeps it: peers by public key,
// each with its preshared key, configured endpoint, keepalive and allowed IPs, an allowed IP owned by
// one peer at a time (given to another, it moves). Both ways of configuring the device land here —
// the backend's setPeer/removePeer and a `wg set` through the UAPI socket — and each change says what
// the native device and the engine's routes must do about it. Pure: the device applies the changes.
import { formatCIDR, formatIP, netEqual, type IPAddr, type IPNet } from '../../ip/index.js';
import { parseWgKey } from './key-file.js';
import { EINVAL, parseEndpointText, UapiError, type UapiSet } from './uapi-codec.js';
import type { WgPeerConfig } from './device.js';

export interface ModelEndpoint {
  ip: IPAddr;
  port: number;
}

export interface ModelPeer {
  publicKey: Buffer;
  presharedKey?: Buffer;
  /** As configured (the device's current endpoint may have roamed since). */
  endpoint?: ModelEndpoint;
  persistentKeepalive: number;
  allowedIPs: IPNet[];
}

/** What the native device must be told after a change. */
export interface ModelChange {
  /** Peers to (re)configure natively; `endpointChanged` says whether to hand over the endpoint too. */
  set: Array<{ peer: ModelPeer; endpointChanged: boolean }>;
  /** Peers to remove natively, after the routes no longer name them. */
  removed: Buffer[];
  /** Whether the routes (allowed IPs) differ from before. */
  routes: boolean;
}

const hex = (k: Buffer): string => k.toString('hex');
const sameEndpoint = (a?: ModelEndpoint, b?: ModelEndpoint): boolean => a?.ip.value === b?.ip.value && a?.ip.family === b?.ip.family && a?.port === b?.port;
const sameKey = (a?: Buffer, b?: Buffer): boolean => (a ?? Buffer.alloc(32)).equals(b ?? Buffer.alloc(32));

export class WgPeerModel {
  private readonly peers = new Map<string, ModelPeer>();

  constructor(private readonly ownPublicKey: () => Buffer) {}

  list(): ModelPeer[] {
    return [...this.peers.values()];
  }

  get(publicKey: Buffer): ModelPeer | undefined {
    return this.peers.get(hex(publicKey));
  }

  /** The backend's way: one peer, its allowed IPs replaced (flannel's ReplaceAllowedIPs). */
  setPeer(p: WgPeerConfig): ModelChange {
    const endpoint = p.endpoint === undefined ? undefined : parseEndpointText(p.endpoint);
    if (p.endpoint !== undefined && !endpoint) throw new Error(`peer ${p.publicKey}: endpoint ${JSON.stringify(p.endpoint)} is not ip:port or [ip6]:port`);
    const change = emptyChange();
    this.upsert(
      {
        publicKey: parseWgKey(p.publicKey),
        presharedKey: p.presharedKey ? parseWgKey(p.presharedKey) : undefined,
        endpoint,
        persistentKeepalive: p.persistentKeepalive,
        allowedIPs: p.allowedIPs,
        replaceAllowedIPs: true,
        pskGiven: true,
      },
      change,
    );
    return change;
  }

  removePeer(publicKey: Buffer): ModelChange {
    const change = emptyChange();
    this.remove(publicKey, change);
    return change;
  }

  /** A UAPI set request (wireguard-go's IpcSetOperation): replace_peers, remove, update_only, allowed IPs. */
  applyUapi(req: UapiSet): ModelChange {
    const change = emptyChange();
    if (req.replacePeers) for (const p of this.list()) this.remove(p.publicKey, change);
    for (const p of req.peers) {
      if (p.remove) {
        this.remove(p.publicKey, change);
        continue;
      }
      const existing = this.get(p.publicKey);
      if (!existing && p.updateOnly) continue;
      if (p.publicKey.equals(this.ownPublicKey())) continue; // wireguard-go ignores a peer with our own key
      if (p.publicKey.equals(Buffer.alloc(32))) throw new UapiError(EINVAL, 'failed to set peer: the zero public key');
      const allowed = p.replaceAllowedIPs ? [] : [...(existing?.allowedIPs ?? [])];
      for (const a of p.allowedIPs) {
        const at = allowed.findIndex((n) => netEqual(n, a.net));
        if (a.remove) {
          if (at >= 0) allowed.splice(at, 1);
        } else if (at < 0) allowed.push(a.net);
      }
      this.upsert(
        {
          publicKey: p.publicKey,
          presharedKey: p.presharedKey ?? existing?.presharedKey,
          endpoint: p.endpoint ?? existing?.endpoint,
          persistentKeepalive: p.persistentKeepalive ?? existing?.persistentKeepalive ?? 0,
          allowedIPs: allowed,
          replaceAllowedIPs: true,
          pskGiven: p.presharedKey !== undefined,
        },
        change,
      );
    }
    return change;
  }

  /** Every allowed IP as an engine route naming its peer (the route carries the configured endpoint). */
  routes(): Array<{ subnet: string; publicIP: string; port: number; publicKey: string }> {
    return this.list().flatMap((p) =>
      p.allowedIPs.map((n) => ({
        subnet: formatCIDR(n),
        publicIP: p.endpoint ? formatIP(p.endpoint.ip) : '',
        port: p.endpoint?.port ?? 0,
        publicKey: hex(p.publicKey),
      })),
    );
  }

  private upsert(p: ModelPeer & { replaceAllowedIPs: boolean; pskGiven: boolean }, change: ModelChange): void {
    const old = this.get(p.publicKey);
    const next: ModelPeer = {
      publicKey: p.publicKey,
      presharedKey: p.pskGiven ? p.presharedKey : old?.presharedKey,
      endpoint: p.endpoint ?? old?.endpoint,
      persistentKeepalive: p.persistentKeepalive,
      allowedIPs: dedupe(p.allowedIPs),
    };
    // An allowed IP belongs to one peer: given to this one, it leaves the others (as in wireguard-go).
    for (const other of this.list()) {
      if (other.publicKey.equals(p.publicKey)) continue;
      const kept = other.allowedIPs.filter((n) => !next.allowedIPs.some((m) => netEqual(m, n)));
      if (kept.length !== other.allowedIPs.length) {
        other.allowedIPs = kept;
        change.routes = true;
      }
    }
    const endpointChanged = !old ? next.endpoint !== undefined : !sameEndpoint(old.endpoint, next.endpoint);
    const nativeChanged = !old || endpointChanged || !sameKey(old.presharedKey, next.presharedKey) || old.persistentKeepalive !== next.persistentKeepalive;
    const routesChanged = !old || !sameNets(old.allowedIPs, next.allowedIPs) || endpointChanged;
    this.peers.set(hex(p.publicKey), next);
    if (nativeChanged) change.set.push({ peer: next, endpointChanged });
    if (routesChanged) change.routes = true;
  }

  private remove(publicKey: Buffer, change: ModelChange): void {
    if (!this.peers.delete(hex(publicKey))) return;
    change.removed.push(publicKey);
    change.routes = true;
  }
}

function emptyChange(): ModelChange {
  return { set: [], removed: [], routes: false };
}

function dedupe(nets: IPNet[]): IPNet[] {
  return nets.filter((n, i) => nets.findIndex((m) => netEqual(m, n)) === i);
}

function sameNets(a: IPNet[], b: IPNet[]): boolean {
  return a.length === b.length && a.every((n) => b.some((m) => netEqual(m, n)));
}
