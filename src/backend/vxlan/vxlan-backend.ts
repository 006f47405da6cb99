// The vxlan backend's entry: kernel devices flannel.<VNI> / flannel-v6.<VNI> as flannel makes them, or
// the userspace VTEP when net-conf or -vxlan-userspace asks for it or the kernel has no VXLAN.
import type { Backend, BackendContext, RunningNetwork } from '../types.js';
import { type Family, type IPAddr } from '../../ip/index.js';
import { log } from '../../log.js';
import type { Link } from '../../netlink/index.js';
import type { Lease } from '../../subnet/types.js';
import type { VxlanOps } from '../kernel-ops.js';
import type { TunPlatform } from '../tun/data-plane.js';
import { configureVxlanDevice, ensureVxlanDevice, randomMac, type VxlanDeviceSpec } from './vxlan-device.js';
import { VxlanNetwork } from './vxlan-kernel.js';
import { normalizeMac, parseVxlanOptions, VXLAN_ENCAP_OVERHEAD, vxlanBackendData, vxlanDeviceName } from './vxlan-options.js';
import { subnetAddr, type VxlanDev } from './vxlan-peers.js';
import { userspaceBackend } from './vxlan-userspace.js';
import type { LinkWatchFn } from './vxlan-recovery.js';

export interface VxlanPlatform {
  ops(): VxlanOps;
  /** MAC generator for new devices (tests pin it). */
  newMac?: () => string;
  /** The userspace VTEP's parts: without them there is no fallback when the kernel lacks VXLAN. */
  userspace?: TunPlatform;
  /** -vxlan-userspace: this node uses the userspace VTEP whatever net-conf says. */
  forceUserspace?: boolean;
  /** Link notifications, to re-create a deleted device at once; without it the periodic reconcile does. */
  watchLinks?: LinkWatchFn;
}

/**
 * The errno of a kernel without VXLAN: rtnetlink answers EOPNOTSUPP for a link kind it has no driver
 * for (and cannot load a module for).
 */
export function isKernelWithoutVxlan(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return code === 'EOPNOTSUPP' || code === 'ENOTSUP';
}

function toDev(l: Link): VxlanDev {
  return { index: l.index, name: l.name, mac: l.mac ?? '', mtu: l.mtu };
}

/**
 * The MAC of a device created anew: the VtepMAC the store remembers (kube: our node's annotation), so
 * every peer's neighbour and FDB entries stay right across a restart; one that does not parse is
 * logged and a new one chosen. Called only when a device is created: an existing one keeps its MAC.
 */
export function macForNewDevice(name: string, stored: string | undefined, fresh: () => string): () => string {
  return () => {
    if (stored === undefined) return fresh();
    const mac = normalizeMac(stored);
    if (!mac) {
      const chosen = fresh();
      log.warning(`Failed to parse mac addr(${stored}) stored for ${name}: not a MAC address like 2a:6b:41:86:81:04; using the new MAC ${chosen}`);
      return chosen;
    }
    log.info(`Interface ${name} mac address set to: ${mac} (the VtepMAC stored for this node)`);
    return mac;
  };
}

export function vxlanBackendFactory(platform: VxlanPlatform) {
  return async (ctx: BackendContext): Promise<Backend> => {
    const { config, extIface: ext } = ctx;
    const opts = parseVxlanOptions(config.backend.raw);
    log.info(`VXLAN config: VNI=${opts.vni} Port=${opts.port} GBP=${opts.gbp} Learning=${opts.learning} DirectRouting=${opts.directRouting}`);
    if (opts.macPrefix) log.info(`Backend.MacPrefix ${opts.macPrefix} is a Windows-only option in flannel; Linux devices get a random locally administered MAC`);
    const ops = platform.ops();
    if ((opts.userspace || platform.forceUserspace) && platform.userspace) {
      log.info(`vxlan: userspace VTEP (${opts.userspace ? 'Backend.Userspace' : '-vxlan-userspace'})`);
      return userspaceBackend(ctx, opts, ops, platform.userspace);
    }
    const deviceMtu = (opts.mtu ?? ext.mtu) - VXLAN_ENCAP_OVERHEAD;
    const stored = (await ctx.storedMacs?.()) ?? {};
    const make = (family: Family, local: IPAddr | undefined): VxlanDev => {
      const name = vxlanDeviceName(opts.vni, family);
      if (!local) throw new Error(`failed to create vxlan device ${name}: interface ${ext.name} has no IPv${family} address`);
      const spec: VxlanDeviceSpec = { name, vni: opts.vni, link: ext.index, local, port: opts.port, gbp: opts.gbp, learning: opts.learning, mtu: deviceMtu };
      const link = ensureVxlanDevice(ops, spec, macForNewDevice(name, family === 4 ? stored.v4 : stored.v6, platform.newMac ?? randomMac));
      if (link.mtu !== deviceMtu) log.warning(`${name}: the kernel set MTU ${link.mtu}, not ${deviceMtu}`);
      return { ...toDev(link), spec };
    };
    const devs: { v4?: VxlanDev; v6?: VxlanDev } = {};
    try {
      // flannel uses the external (public) address as the VTEP source; it is the interface address unless -public-ip says otherwise.
      if (config.enableIPv4) devs.v4 = make(4, ext.publicIP ?? ext.ifaceAddr);
      if (config.enableIPv6) devs.v6 = make(6, ext.publicIPv6 ?? ext.ifaceAddrV6);
    } catch (e) {
      if (!isKernelWithoutVxlan(e) || !platform.userspace) throw e;
      log.warning(`the kernel cannot create VXLAN devices (${(e as Error).message}); falling back to the userspace VXLAN VTEP`);
      return userspaceBackend(ctx, opts, ops, platform.userspace);
    }
    return {
      type: 'vxlan',
      backendData: () => (devs.v4 && ext.publicIP ? vxlanBackendData(opts.vni, devs.v4.mac) : undefined),
      backendV6Data: () => (devs.v6 && ext.publicIPv6 ? vxlanBackendData(opts.vni, devs.v6.mac) : undefined),
      start: async (lease: Lease): Promise<RunningNetwork> => {
        if (devs.v4) {
          if (!lease.subnet) throw new Error(`failed to configure interface ${devs.v4.name}: IPv4 is enabled but the lease has no IPv4`);
          configureVxlanDevice(ops, devs.v4, subnetAddr(lease.subnet), config.network, devs.v4.mac);
        }
        if (devs.v6) {
          if (!lease.ipv6Subnet) throw new Error(`failed to configure interface ${devs.v6.name}: IPv6 is enabled but the lease has no IPv6`);
          configureVxlanDevice(ops, devs.v6, subnetAddr(lease.ipv6Subnet), config.ipv6Network, devs.v6.mac);
        }
        const net = new VxlanNetwork(config, ext, lease, opts, ops, devs);
        if (platform.watchLinks) net.watchDevices(platform.watchLinks);
        log.info(`vxlan: ${[devs.v4?.name, devs.v6?.name].filter(Boolean).join(', ')} up, MTU ${net.mtu}`);
        return net;
      },
    };
  };
}
