// RTM_*LINK bodies: struct ifinfomsg + IFLA_* attributes, including IFLA_LINKINFO for vxlan.
import { bytesToIp, bytesToMac, ipToBytes, macToBytes } from './addr.js';
import {
  AF_UNSPEC,
  IF_OPER_NAMES,
  IFF_UP,
  IFINFOMSG_LEN,
  IFLA_ADDRESS,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINK,
  IFLA_LINKINFO,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_OPERSTATE,
  IFLA_VXLAN_AGEING,
  IFLA_VXLAN_GBP,
  IFLA_VXLAN_ID,
  IFLA_VXLAN_LEARNING,
  IFLA_VXLAN_LINK,
  IFLA_VXLAN_LOCAL,
  IFLA_VXLAN_LOCAL6,
  IFLA_VXLAN_PORT,
  IFLA_VXLAN_TTL,
  IFLA_VXLAN_UDP_CSUM,
} from './constants.js';
import { Attrs, DecodeError, guard, attrFlag, attrNested, attrString, attrU16BE, attrU32, attrU8, attr, type Decoded } from './codec.js';
import type { Link, VxlanInfo, VxlanLinkSpec } from './types.js';

export interface IfInfoMsg {
  family: number;
  /** ARPHRD_* device type. */
  type: number;
  index: number;
  flags: number;
  change: number;
}

export function encodeIfInfoMsg(m: Partial<IfInfoMsg>): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b.writeUInt8(m.family ?? AF_UNSPEC, 0);
  b.writeUInt16LE(m.type ?? 0, 2);
  b.writeInt32LE(m.index ?? 0, 4);
  b.writeUInt32LE((m.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((m.change ?? 0) >>> 0, 12);
  return b;
}

export function decodeIfInfoMsg(p: Buffer): IfInfoMsg {
  if (p.length < IFINFOMSG_LEN) throw new DecodeError(`ifinfomsg: ${p.length} bytes, need ${IFINFOMSG_LEN}`);
  return { family: p.readUInt8(0), type: p.readUInt16LE(2), index: p.readInt32LE(4), flags: p.readUInt32LE(8), change: p.readUInt32LE(12) };
}

/** RTM_GETLINK body selecting one link by index or by name (index 0 + IFLA_IFNAME). */
export function encodeGetLink(nameOrIndex: string | number): Buffer {
  if (typeof nameOrIndex === 'number') return encodeIfInfoMsg({ index: nameOrIndex });
  return Buffer.concat([encodeIfInfoMsg({}), attrString(IFLA_IFNAME, nameOrIndex)]);
}

/** RTM_NEWLINK body changing IFF_UP only (ifi_change masks which flags the kernel touches). */
export function encodeSetLinkUp(index: number, up: boolean): Buffer {
  return encodeIfInfoMsg({ index, flags: up ? IFF_UP : 0, change: IFF_UP });
}

export function encodeSetLinkMtu(index: number, mtu: number): Buffer {
  return Buffer.concat([encodeIfInfoMsg({ index }), attrU32(IFLA_MTU, mtu)]);
}

/** RTM_NEWLINK body creating a vxlan device the way flannel's vxlan backend configures it. */
export function encodeNewVxlanLink(s: VxlanLinkSpec): Buffer {
  const data: Buffer[] = [attrU32(IFLA_VXLAN_ID, s.vni)];
  if (s.link !== undefined) data.push(attrU32(IFLA_VXLAN_LINK, s.link));
  if (s.local !== undefined) data.push(attr(s.local.family === 4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, ipToBytes(s.local)));
  if (s.port) data.push(attrU16BE(IFLA_VXLAN_PORT, s.port));
  data.push(attrU8(IFLA_VXLAN_LEARNING, s.learning ? 1 : 0));
  data.push(attrU8(IFLA_VXLAN_UDP_CSUM, s.udpCsum === false ? 0 : 1));
  if (s.gbp) data.push(attrFlag(IFLA_VXLAN_GBP));
  const parts: Buffer[] = [encodeIfInfoMsg({}), attrString(IFLA_IFNAME, s.name)];
  if (s.mtu !== undefined) parts.push(attrU32(IFLA_MTU, s.mtu));
  if (s.mac !== undefined) parts.push(attr(IFLA_ADDRESS, macToBytes(s.mac)));
  parts.push(attrNested(IFLA_LINKINFO, [attrString(IFLA_INFO_KIND, 'vxlan'), attrNested(IFLA_INFO_DATA, data)]));
  return Buffer.concat(parts);
}

export function encodeDelLink(index: number): Buffer {
  return encodeIfInfoMsg({ index });
}

function decodeVxlan(a: Attrs): VxlanInfo {
  const v: VxlanInfo = {
    vni: a.u32(IFLA_VXLAN_ID) ?? 0,
    port: a.u16be(IFLA_VXLAN_PORT) ?? 0,
    learning: (a.u8(IFLA_VXLAN_LEARNING) ?? 0) !== 0,
    gbp: a.has(IFLA_VXLAN_GBP),
  };
  const local4 = a.raw(IFLA_VXLAN_LOCAL);
  const local6 = a.raw(IFLA_VXLAN_LOCAL6);
  const local = local4 ? bytesToIp(local4) : local6 ? bytesToIp(local6) : undefined;
  // The kernel reports an all-zero local as "unset".
  if (local && local.value !== 0n) v.local = local;
  const link = a.u32(IFLA_VXLAN_LINK);
  if (link) v.link = link;
  const csum = a.u8(IFLA_VXLAN_UDP_CSUM);
  if (csum !== undefined) v.udpCsum = csum !== 0;
  const ttl = a.u8(IFLA_VXLAN_TTL);
  if (ttl !== undefined) v.ttl = ttl;
  const ageing = a.u32(IFLA_VXLAN_AGEING);
  if (ageing !== undefined) v.ageing = ageing;
  return v;
}

/** RTM_NEWLINK payload (reply to GETLINK or dump entry) -> Link. */
export function decodeLink(p: Buffer): Decoded<Link> {
  return guard('link', () => {
    const h = decodeIfInfoMsg(p);
    const a = Attrs.parse(p.subarray(IFINFOMSG_LEN), 'link attributes');
    const name = a.str(IFLA_IFNAME);
    if (name === undefined) throw new DecodeError(`link ${h.index} has no IFLA_IFNAME`);
    const link: Link = { index: h.index, name, mtu: a.u32(IFLA_MTU) ?? 0, flags: h.flags, up: (h.flags & IFF_UP) !== 0 };
    const mac = a.raw(IFLA_ADDRESS);
    if (mac && mac.length > 0) link.mac = bytesToMac(mac);
    const parent = a.u32(IFLA_LINK);
    if (parent !== undefined && parent !== h.index) link.parent = parent;
    const master = a.u32(IFLA_MASTER);
    if (master) link.master = master;
    const oper = a.u8(IFLA_OPERSTATE);
    if (oper !== undefined) link.operState = IF_OPER_NAMES[oper] ?? `oper${oper}`;
    const info = a.nested(IFLA_LINKINFO, 'IFLA_LINKINFO');
    if (info) {
      const kind = info.str(IFLA_INFO_KIND);
      if (kind) link.kind = kind;
      if (kind === 'vxlan') {
        const data = info.nested(IFLA_INFO_DATA, 'IFLA_INFO_DATA');
        if (data) link.vxlan = decodeVxlan(data);
      }
    }
    return link;
  });
}
