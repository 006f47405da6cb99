// flannel's vxlan device handling (pkg/backend/vxlan/device.go): create flannel.<VNI>, or reuse an
// existing device whose settings are compatible, else delete and recreate it; then give it the
// lease's network address (/32 or /128), drop other overlay addresses, and bring it up.
import { randomBytes } from 'node:crypto';
import { containsIP, formatIP, ipEqual, type IPAddr, type IPNet } from '../../ip/index.js';
import type { Link } from '../../netlink/index.js';
import { log } from '../../log.js';
import type { VxlanOps } from '../kernel-ops.js';

/** Linux IFNAMSIZ - 1. */
const MAX_IFNAME = 15;

export interface VxlanDeviceSpec {
  name: string;
  vni: number;
  /** Underlay device index (IFLA_VXLAN_LINK). */
  link: number;
  local?: IPAddr;
  /** 0: the kernel default (8472). */
  port: number;
  gbp: boolean;
  learning: boolean;
  /** Device MTU (flannel: MTU option or the external MTU, minus 50). */
  mtu: number;
}

/** A random locally administered unicast MAC, as flannel's mac.NewHardwareAddr makes. */
export function randomMac(rand: (n: number) => Buffer = randomBytes): string {
  const b = rand(6);
  b[0] = ((b[0] ?? 0) & 0xfe) | 0x02;
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * Why an existing link cannot be reused, or '' when it can. Mirrors flannel's vxlanLinksIncompat:
 * fields that are unset on either side do not count; we also compare learning, which flannel sets.
 */
export function vxlanIncompat(want: VxlanDeviceSpec, have: Link): string {
  if (have.kind !== 'vxlan' || !have.vxlan) return `link type: vxlan vs ${have.kind ?? 'none'}`;
  const v = have.vxlan;
  if (v.vni !== want.vni) return `vni: ${want.vni} vs ${v.vni}`;
  if (want.link > 0 && v.link !== undefined && v.link > 0 && v.link !== want.link) return `vtep (external) interface: ${want.link} vs ${v.link}`;
  if (want.local && v.local && !ipEqual(want.local, v.local)) return `vtep (external) IP: ${formatIP(want.local)} vs ${formatIP(v.local)}`;
  if (want.port > 0 && v.port > 0 && want.port !== v.port) return `port: ${want.port} vs ${v.port}`;
  if (want.gbp !== v.gbp) return `gbp: ${want.gbp} vs ${v.gbp}`;
  if (want.learning !== v.learning) return `learning: ${want.learning} vs ${v.learning}`;
  return '';
}

/** Returns the device to use, created or reused; its MAC is what goes into the lease's VtepMAC. */
export function ensureVxlanDevice(ops: VxlanOps, spec: VxlanDeviceSpec, mac: () => string = randomMac): Link {
  if (Buffer.byteLength(spec.name) > MAX_IFNAME) {
    throw new Error(`vxlan device name ${spec.name} is longer than ${MAX_IFNAME} bytes (Linux IFNAMSIZ); use a smaller Backend.VNI`);
  }
  const existing = ops.findLink(spec.name);
  let dev: Link | undefined;
  if (existing) {
    const why = vxlanIncompat(spec, existing);
    if (why === '') {
      log.v(1).info(`VXLAN device already exists; reusing ${spec.name}`);
      dev = existing;
    } else {
      log.warning(`"${spec.name}" already exists with incompatible configuration: ${why}; recreating device`);
      ops.deleteLink(existing.index);
    }
  }
  if (!dev) {
    dev = ops.addVxlanLink({
      name: spec.name,
      vni: spec.vni,
      local: spec.local,
      port: spec.port,
      learning: spec.learning,
      gbp: spec.gbp,
      link: spec.link,
      mtu: spec.mtu,
      mac: mac(),
      udpCsum: true,
    });
  } else if (dev.mtu > spec.mtu) {
    // Only ever lowered: a smaller MTU on a reused device is usually the kernel's own cap (an IPv6
    // underlay costs 70 bytes, not 50), and asking for more than the cap is EINVAL.
    log.info(`setting MTU of ${spec.name} from ${dev.mtu} to ${spec.mtu}`);
    ops.setLinkMtu(dev.index, spec.mtu);
    dev = ops.findLink(spec.name) ?? dev;
  }
  ops.disableAcceptRA(spec.name);
  if (!dev.mac) throw new Error(`vxlan device ${spec.name} has no MAC address`);
  return dev;
}

/**
 * flannel's EnsureV4/V6AddressOnLink + LinkSetUp: exactly the lease network address as /32 (/128), other
 * addresses of the overlay network removed, device up, and the MAC still the one advertised (flannel #1795).
 */
export function configureVxlanDevice(ops: VxlanOps, dev: { index: number; name: string }, addr: IPAddr, network: IPNet | undefined, advertisedMac: string): void {
  const prefixLen = addr.family === 4 ? 32 : 128;
  let has = false;
  for (const a of ops.listAddrs(addr.family, dev.index)) {
    if (ipEqual(a.addr, addr) && a.prefixLen === prefixLen) {
      has = true;
      continue;
    }
    if (network && containsIP(network, a.addr)) {
      ops.delAddr(dev.index, a.addr, a.prefixLen);
      log.info(`removed IP address ${formatIP(a.addr)}/${a.prefixLen} from ${dev.name}`);
    }
  }
  if (!has) ops.addAddr(dev.index, addr, prefixLen);
  ops.setLinkUp(dev.index);
  const now = ops.findLink(dev.index);
  if (now?.mac && now.mac !== advertisedMac) {
    throw new Error(`${dev.name}'s mac address wanted: ${advertisedMac}, but got: ${now.mac}`);
  }
}
