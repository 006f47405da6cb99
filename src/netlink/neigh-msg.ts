// RTM_*NEIGH bodies: struct ndmsg + NDA_* attributes. Used for ARP/NDP entries (AF_INET/AF_INET6) and,
// with AF_BRIDGE + NTF_SELF, for a vxlan device's own forwarding database (`bridge fdb ... self`).
import type { IPAddr } from '../ip/types.js';
import { bytesToIp, bytesToMac, familyToAf, ipToBytes, macToBytes } from './addr.js';
import { AF_BRIDGE, NDA_DST, NDA_LLADDR, NDA_MASTER, NDA_PORT, NDA_VNI, NDMSG_LEN, NTF_SELF, NUD_PERMANENT } from './constants.js';
import { Attrs, DecodeError, attr, guard, type Decoded } from './codec.js';
import type { FdbSpec, Neigh, NeighSpec } from './types.js';

export interface NdMsg {
  family: number;
  index: number;
  state: number;
  flags: number;
  type: number;
}

export function encodeNdMsg(m: NdMsg): Buffer {
  const b = Buffer.alloc(NDMSG_LEN);
  b.writeUInt8(m.family, 0);
  b.writeInt32LE(m.index, 4);
  b.writeUInt16LE(m.state, 8);
  b.writeUInt8(m.flags, 10);
  b.writeUInt8(m.type, 11);
  return b;
}

export function decodeNdMsg(p: Buffer): NdMsg {
  if (p.length < NDMSG_LEN) throw new DecodeError(`ndmsg: ${p.length} bytes, need ${NDMSG_LEN}`);
  return { family: p.readUInt8(0), index: p.readInt32LE(4), state: p.readUInt16LE(8), flags: p.readUInt8(10), type: p.readUInt8(11) };
}

/** RTM_NEWNEIGH / RTM_DELNEIGH body for an IP neighbour (ARP/NDP entry). */
export function encodeNeigh(s: NeighSpec): Buffer {
  return Buffer.concat([
    encodeNdMsg({ family: familyToAf(s.dst.family), index: s.index, state: s.state ?? NUD_PERMANENT, flags: s.flags ?? 0, type: 0 }),
    attr(NDA_DST, ipToBytes(s.dst)),
    attr(NDA_LLADDR, macToBytes(s.lladdr)),
  ]);
}

/** Neighbour delete needs only the key (device + address). */
export function encodeNeighKey(index: number, dst: IPAddr): Buffer {
  return Buffer.concat([encodeNdMsg({ family: familyToAf(dst.family), index, state: 0, flags: 0, type: 0 }), attr(NDA_DST, ipToBytes(dst))]);
}

/** FDB entry on a vxlan device: AF_BRIDGE, NTF_SELF (the device's own table), NUD_PERMANENT, MAC -> VTEP. */
export function encodeFdb(s: FdbSpec): Buffer {
  return Buffer.concat([
    encodeNdMsg({ family: AF_BRIDGE, index: s.index, state: NUD_PERMANENT, flags: NTF_SELF, type: 0 }),
    attr(NDA_LLADDR, macToBytes(s.lladdr)),
    attr(NDA_DST, ipToBytes(s.dst)),
  ]);
}

/** RTM_GETNEIGH dump request body. */
export function encodeNeighDump(af: number, index = 0): Buffer {
  return encodeNdMsg({ family: af, index, state: 0, flags: 0, type: 0 });
}

export function decodeNeigh(p: Buffer): Decoded<Neigh> {
  return guard('neighbour', () => {
    const h = decodeNdMsg(p);
    const a = Attrs.parse(p.subarray(NDMSG_LEN), 'neighbour attributes');
    const n: Neigh = { af: h.family, index: h.index, state: h.state, flags: h.flags };
    const dst = a.raw(NDA_DST);
    if (dst) {
      const ip = bytesToIp(dst);
      if (!ip) throw new DecodeError(`NDA_DST has ${dst.length} bytes`);
      n.dst = ip;
    }
    const ll = a.raw(NDA_LLADDR);
    if (ll && ll.length > 0) n.lladdr = bytesToMac(ll);
    const vni = a.u32(NDA_VNI);
    if (vni !== undefined) n.vni = vni;
    const port = a.u16be(NDA_PORT);
    if (port !== undefined) n.port = port;
    const master = a.u32(NDA_MASTER);
    if (master !== undefined) n.master = master;
    return n;
  });
}
