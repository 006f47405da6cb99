// Kernel WireGuard, where the kernel has it: the device made with rtnetlink (`ip link add type
// wireguard`) and configured through the generic-netlink wireguard family the way flannel's wgctrl
// does (key and port with ReplacePeers, then one peer at a time with ReplaceAllowedIPs, removal by
// key). A kernel without WireGuard answers the link creation with EOPNOTSUPP, which device.ts turns
// into our userspace device. Verified here against byte fixtures and doubles only: this repository's
// test kernel has no WireGuard (README).
import type { Link } from '../../netlink/types.js';
import type { WgDeviceInfo, WgSetDevice } from '../../netlink/genl/wireguard.js';
import { log } from '../../log.js';
import type { WgDevice, WgDeviceFactory, WgDeviceSpec, WgPeerConfig, WgPeerStatus } from './device.js';
import { parseWgKey } from './key-file.js';
import { formatEndpointText, parseEndpointText } from './uapi-codec.js';

/** The generic-netlink side (netlink/genl/wireguard-conn.ts WireguardGenl, or a double). */
export interface WgGenl {
  setDevice(d: WgSetDevice): void;
  getDevice(dev: { ifindex?: number; ifname?: string }): WgDeviceInfo;
  close(): void;
}

export interface KernelWgPlatform {
  links: {
    findLink(name: string): Link | undefined;
    deleteLink(index: number): void;
    addWireguardLink(name: string, mtu: number): Link;
  };
  openGenl(): WgGenl;
}

export class KernelWgDevice implements WgDevice {
  readonly kind = 'kernel' as const;

  constructor(
    private readonly link: Link,
    private readonly genl: WgGenl,
    private readonly links: KernelWgPlatform['links'],
  ) {}

  get name(): string {
    return this.link.name;
  }

  get index(): number {
    return this.link.index;
  }

  async setPeer(p: WgPeerConfig): Promise<void> {
    const ep = p.endpoint === undefined ? undefined : parseEndpointText(p.endpoint);
    if (p.endpoint !== undefined && !ep) throw new Error(`peer ${p.publicKey}: endpoint ${JSON.stringify(p.endpoint)} is not ip:port or [ip6]:port`);
    this.genl.setDevice({
      ifindex: this.link.index,
      peers: [
        {
          publicKey: parseWgKey(p.publicKey),
          ...(p.presharedKey ? { presharedKey: parseWgKey(p.presharedKey) } : {}),
          ...(ep ? { endpoint: ep } : {}),
          persistentKeepalive: p.persistentKeepalive,
          replaceAllowedIPs: true,
          allowedIPs: p.allowedIPs,
        },
      ],
    });
  }

  async removePeer(publicKey: string): Promise<void> {
    this.genl.setDevice({ ifindex: this.link.index, peers: [{ publicKey: parseWgKey(publicKey), remove: true }] });
  }

  async peers(): Promise<WgPeerStatus[]> {
    return this.peersNow();
  }

  peersNow(): WgPeerStatus[] {
    return this.genl.getDevice({ ifindex: this.link.index }).peers.map((p) => ({
      publicKey: p.publicKey.toString('base64'),
      endpoint: p.endpoint ? formatEndpointText(p.endpoint) : undefined,
      allowedIPs: p.allowedIPs,
      persistentKeepalive: p.persistentKeepalive,
      lastHandshakeMs: Number(p.lastHandshakeSec) * 1000 + Math.floor(Number(p.lastHandshakeNsec) / 1e6),
      rxBytes: Number(p.rxBytes),
      txBytes: Number(p.txBytes),
    }));
  }

  async close(): Promise<void> {
    try {
      this.links.deleteLink(this.link.index);
    } finally {
      this.genl.close();
    }
  }
}

/** The kernel's WireGuard as a WgDeviceFactory; create() fails with EOPNOTSUPP where the kernel has none. */
export function kernelWgFactory(p: KernelWgPlatform): WgDeviceFactory {
  return {
    async create(spec: WgDeviceSpec): Promise<WgDevice> {
      const old = p.links.findLink(spec.name);
      if (old) {
        log.info(`wireguard: removing the existing device ${spec.name} (index ${old.index}) to create it anew`);
        p.links.deleteLink(old.index);
      }
      const link = p.links.addWireguardLink(spec.name, spec.mtu);
      let genl: WgGenl | undefined;
      try {
        genl = p.openGenl();
        genl.setDevice({ ifindex: link.index, privateKey: spec.privateKey, listenPort: spec.listenPort, replacePeers: true });
      } catch (e) {
        genl?.close();
        p.links.deleteLink(link.index);
        throw e;
      }
      if (spec.alsoListenPort !== undefined && spec.alsoListenPort !== spec.listenPort) {
        // A kernel device listens on one port; flannel's lease advertises ListenPortV6 for IPv6 anyway.
        log.warning(`wireguard: kernel device ${spec.name} listens on ${spec.listenPort} only; peers that dial the advertised IPv6 port ${spec.alsoListenPort} reach it once it has reached them (or set ListenPortV6 equal to ListenPort)`);
      }
      return new KernelWgDevice(link, genl, p.links);
    },
  };
}
