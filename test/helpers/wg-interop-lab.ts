// A two-node lab for the WireGuard interop tests: n1 runs our flanneld (userspace WireGuard: this
// kernel has none), n2 is a node as stock flanneld would make it — Debian's wireguard-go configured by
// `wg` and `ip` as flannel's backend configures its device (src/lab/wireguard-go.ts), its lease written
// to etcd as stock flanneld writes it, its peers set from our lease as flannel's handleSubnetEvents does.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCIDR, formatIP, mustParseIP, parseCIDR } from '../../src/ip/index.js';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import { LAB_NETWORK_V4, LAB_NETWORK_V6 } from '../../src/lab/topology.js';
import { WireguardGoDevice, wgKeyPair } from '../../src/lab/wireguard-go.js';
import { LAB_ETCD_PREFIX } from '../../src/lab/lab-etcd.js';
import { decodeLeaseAttrs, encodeLeaseAttrs, parseSubnetKey, subnetKeyPath } from '../../src/subnet/lease.js';
import type { WgMode } from '../../src/backend/wireguard/options.js';

export interface InteropOptions {
  mode: WgMode;
  ipv6: boolean;
  psk?: string;
  /** PersistentKeepaliveInterval, seconds. */
  keepalive?: number;
  /** FLANNELTS_WG_TIMING_SCALE for our daemon (the documented test hook). */
  timingScale?: number;
  listenPort?: number;
  listenPortV6?: number;
}

/** Their side: the devices by flannel's slot names, their key, their lease's subnets and etcd key. */
export interface TheirSide {
  node: LabNode;
  publicKey: string;
  devs: { v4?: WireguardGoDevice; v6?: WireguardGoDevice; single?: WireguardGoDevice };
  leaseKey: string;
}

const MTU = 1500 - 80;

/** Their subnet: the first /24 (and /64) from 198.19.200.0 that is not ours. */
function theirSubnets(ours: Record<string, string>, ipv6: boolean): { v4: string; v6?: string } {
  const taken = ours.FLANNEL_SUBNET?.split('/')[0]?.split('.')[2];
  const third = [200, 201].find((x) => String(x) !== taken)!;
  return { v4: `198.19.${third}.0/24`, ...(ipv6 ? { v6: `2001:db8:100:${third.toString(16)}::/64` } : {}) };
}

export async function interopLab(o: InteropOptions): Promise<{ lab: Lab; ours: LabNode; theirs: () => TheirSide; cleanup: () => Promise<void> }> {
  const listenPort = o.listenPort ?? 51820;
  const listenPortV6 = o.listenPortV6 ?? 51821;
  const dir = mkdtempSync(join(tmpdir(), 'flannelts-wgi-'));
  let side: TheirSide | undefined;
  const backendOptions: Record<string, unknown> = { Mode: o.mode };
  if (o.psk) backendOptions.PSK = o.psk;
  if (o.keepalive) backendOptions.PersistentKeepaliveInterval = o.keepalive;
  if (o.listenPort) backendOptions.ListenPort = o.listenPort;
  if (o.listenPortV6) backendOptions.ListenPortV6 = o.listenPortV6;
  const lab = new Lab({
    nodes: 2,
    backend: 'wireguard',
    ipv6: o.ipv6,
    store: 'etcd',
    backendOptions,
    ...(o.timingScale ? { nodeEnv: () => ({ FLANNELTS_WG_TIMING_SCALE: String(o.timingScale) }) } : {}),
    foreign: {
      count: 1,
      start: async (node, l) => {
        const our = l.nodes[0]!;
        const subnets = theirSubnets(our.subnetEnv, o.ipv6);
        const keys = wgKeyPair();
        const v4 = parseCIDR(subnets.v4)!;
        const v6 = subnets.v6 ? parseCIDR(subnets.v6) : undefined;
        // Stock flanneld's lease: BackendData only with IPv4, BackendV6Data only with IPv6, V6 Port = ListenPortV6.
        const leaseKey = subnetKeyPath(LAB_ETCD_PREFIX, v4, v6);
        const attrs = encodeLeaseAttrs({
          publicIP: mustParseIP(node.underlayIP),
          ...(node.underlayIPv6 ? { publicIPv6: mustParseIP(node.underlayIPv6) } : {}),
          backendType: 'wireguard',
          backendData: { PublicKey: keys.publicKey, Port: listenPort },
          ...(v6 ? { backendV6Data: { PublicKey: keys.publicKey, Port: listenPortV6 } } : {}),
        });
        await l.etcdPut(leaseKey, attrs, 86_400);
        const common = { privateKey: keys.privateKey, mtu: MTU, dir, ...(o.psk ? { psk: o.psk } : {}), ...(o.keepalive ? { keepalive: o.keepalive } : {}) };
        const addr4 = `${subnets.v4.split('/')[0]}/32`;
        const addr6 = subnets.v6 ? `${subnets.v6.split('/')[0]}/128` : undefined;
        const devs: TheirSide['devs'] = {};
        if (o.mode === 'separate') {
          devs.v4 = await WireguardGoDevice.start(node.ns, { ...common, name: 'flannel-wg', listenPort, addresses: [addr4], routes: [LAB_NETWORK_V4] });
          if (addr6) devs.v6 = await WireguardGoDevice.start(node.ns, { ...common, name: 'flannel-wg-v6', listenPort: listenPortV6, addresses: [addr6], routes: [LAB_NETWORK_V6] });
        } else {
          devs.single = await WireguardGoDevice.start(node.ns, { ...common, name: 'flannel-wg', listenPort, addresses: [addr4, ...(addr6 ? [addr6] : [])], routes: [LAB_NETWORK_V4, ...(addr6 ? [LAB_NETWORK_V6] : [])] });
        }
        side = { node, publicKey: keys.publicKey, devs, leaseKey };
        configurePeersFromLeases(l, side, o);
        return {
          FLANNEL_NETWORK: LAB_NETWORK_V4,
          FLANNEL_SUBNET: subnets.v4.replace(/\.0\/24$/, '.1/24'),
          ...(subnets.v6 ? { FLANNEL_IPV6_SUBNET: subnets.v6.replace(/::\/64$/, '::1/64') } : {}),
          FLANNEL_MTU: String(MTU),
        };
      },
    },
  });
  const cleanup = async (): Promise<void> => {
    await lab.down();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await lab.up();
  } catch (e) {
    await cleanup();
    throw e;
  }
  return {
    lab,
    ours: lab.nodes[0]!,
    theirs: () => {
      if (!side) throw new Error('their node is not up');
      return side;
    },
    cleanup,
  };
}

/** flannel's handleSubnetEvents on their node, for every lease but their own in the store. */
export function configurePeersFromLeases(lab: Lab, side: TheirSide, o: Pick<InteropOptions, 'mode'>): void {
  for (const { key, value } of lab.etcdList(`${LAB_ETCD_PREFIX}/subnets/`)) {
    if (key === side.leaseKey) continue;
    const sub = parseSubnetKey(key);
    const attrs = decodeLeaseAttrs(value);
    if (!sub || attrs.backendType !== 'wireguard') continue;
    const d4 = attrs.backendData as { PublicKey: string; Port: number } | undefined;
    const d6 = attrs.backendV6Data as { PublicKey: string; Port: number } | undefined;
    const ep4 = attrs.publicIP && d4 ? `${formatIP(attrs.publicIP)}:${d4.Port}` : undefined;
    const ep6 = attrs.publicIPv6 && d6 ? `[${formatIP(attrs.publicIPv6)}]:${d6.Port}` : undefined;
    const net4 = sub.subnet ? formatCIDR(sub.subnet) : undefined;
    const net6 = sub.ipv6Subnet ? formatCIDR(sub.ipv6Subnet) : undefined;
    if (o.mode === 'separate') {
      if (side.devs.v4 && d4 && net4) side.devs.v4.setPeer({ publicKey: d4.PublicKey, endpoint: ep4, allowedIPs: [net4] });
      if (side.devs.v6 && d6 && net6) side.devs.v6.setPeer({ publicKey: d6.PublicKey, endpoint: ep6, allowedIPs: [net6] });
    } else {
      // One device: the key of the last family decoded, both subnets, the endpoint of the Mode's family.
      const key = (d6 ?? d4)!.PublicKey;
      side.devs.single!.setPeer({ publicKey: key, endpoint: o.mode === 'ipv6' ? ep6 : ep4, allowedIPs: [net4, ...(side.devs.single && net6 && d6 ? [net6] : [])].filter((x): x is string => !!x) });
    }
  }
}
