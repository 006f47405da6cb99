// The objects our netlink API reads and writes. Addresses use the shared IPAddr/IPNet types; MACs are
// lowercase "aa:bb:cc:dd:ee:ff" strings because that is what flannel stores in VtepMAC.
import type { Family, IPAddr, IPNet } from '../ip/types.js';

export interface VxlanInfo {
  vni: number;
  local?: IPAddr;
  /** Destination UDP port; 0 means the kernel default. */
  port: number;
  learning: boolean;
  gbp: boolean;
  /** Index of the underlay device (IFLA_VXLAN_LINK). */
  link?: number;
  udpCsum?: boolean;
  ttl?: number;
  ageing?: number;
}

export interface Link {
  index: number;
  name: string;
  mtu: number;
  /** IFF_* flags. */
  flags: number;
  up: boolean;
  mac?: string;
  /** IFLA_INFO_KIND: "vxlan", "veth", "dummy", "tun"... absent for plain devices like lo. */
  kind?: string;
  /** IFLA_LINK: the peer/lower device index (veth peer, vlan parent). */
  parent?: number;
  master?: number;
  operState?: string;
  vxlan?: VxlanInfo;
}

export interface VxlanLinkSpec {
  name: string;
  vni: number;
  local?: IPAddr;
  /** 0 or absent: the kernel default (8472 on Linux). */
  port?: number;
  learning?: boolean;
  gbp?: boolean;
  /** Underlay device index. */
  link?: number;
  mtu?: number;
  mac?: string;
  /** UDP checksums on (flannel sets this). Default true. */
  udpCsum?: boolean;
}

export interface Addr {
  index: number;
  family: Family;
  addr: IPAddr;
  prefixLen: number;
  /** RT_SCOPE_*. */
  scope: number;
  /** IFA_F_* (from IFA_FLAGS when present, which carries the bits above 8). */
  flags: number;
  label?: string;
  /** IFA_ADDRESS when it differs from IFA_LOCAL (point-to-point peer). */
  peer?: IPAddr;
}

export interface AddrSpec {
  index: number;
  addr: IPAddr;
  prefixLen: number;
  scope?: number;
  /** IFA_F_* bits, e.g. IFA_F_NODAD for IPv6 addresses usable at once. */
  flags?: number;
}

export interface Route {
  family: Family;
  dst: IPNet;
  gateway?: IPAddr;
  oif?: number;
  onlink: boolean;
  table: number;
  scope: number;
  protocol: number;
  /** RTN_* (1 unicast, 2 local...). */
  type: number;
  priority?: number;
  prefsrc?: IPAddr;
  /** rtm_flags (RTNH_F_*, RTM_F_*). */
  flags: number;
}

export interface RouteSpec {
  dst: IPNet;
  gateway?: IPAddr;
  oif?: number;
  onlink?: boolean;
  /** Default RT_TABLE_MAIN. */
  table?: number;
  /** Default: link scope without a gateway, universe with one (what `ip route add` does). */
  scope?: number;
  /** Default RTPROT_BOOT, like `ip route add`. */
  protocol?: number;
  priority?: number;
  prefsrc?: IPAddr;
  /** Default RTN_UNICAST. */
  type?: number;
}

export interface Neigh {
  /** AF_INET, AF_INET6 or AF_BRIDGE (FDB). */
  af: number;
  index: number;
  dst?: IPAddr;
  lladdr?: string;
  /** NUD_* state. */
  state: number;
  /** NTF_* flags. */
  flags: number;
  /** FDB extras (vxlan): NDA_VNI, NDA_PORT, NDA_MASTER. */
  vni?: number;
  port?: number;
  master?: number;
}

export interface NeighSpec {
  index: number;
  dst: IPAddr;
  lladdr: string;
  /** Default NUD_PERMANENT. */
  state?: number;
  flags?: number;
}

export interface FdbSpec {
  index: number;
  lladdr: string;
  /** Remote VTEP address. */
  dst: IPAddr;
}

export interface RouteGetResult {
  oif?: number;
  prefsrc?: IPAddr;
  gateway?: IPAddr;
  table: number;
}
