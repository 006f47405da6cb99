// RTM_*ADDR bodies: struct ifaddrmsg + IFA_* attributes.
import { afToFamily, bytesToIp, familyToAf, ipToBytes } from './addr.js';
import { IFA_ADDRESS, IFA_FLAGS, IFA_LABEL, IFA_LOCAL, IFADDRMSG_LEN, RT_SCOPE_UNIVERSE } from './constants.js';
import { Attrs, DecodeError, attr, guard, type Decoded } from './codec.js';
import type { Addr, AddrSpec } from './types.js';

export interface IfAddrMsg {
  family: number;
  prefixLen: number;
  flags: number;
  scope: number;
  index: number;
}

export function encodeIfAddrMsg(m: IfAddrMsg): Buffer {
  const b = Buffer.alloc(IFADDRMSG_LEN);
  b.writeUInt8(m.family, 0);
  b.writeUInt8(m.prefixLen, 1);
  b.writeUInt8(m.flags & 0xff, 2);
  b.writeUInt8(m.scope, 3);
  b.writeUInt32LE(m.index >>> 0, 4);
  return b;
}

export function decodeIfAddrMsg(p: Buffer): IfAddrMsg {
  if (p.length < IFADDRMSG_LEN) throw new DecodeError(`ifaddrmsg: ${p.length} bytes, need ${IFADDRMSG_LEN}`);
  return { family: p.readUInt8(0), prefixLen: p.readUInt8(1), flags: p.readUInt8(2), scope: p.readUInt8(3), index: p.readUInt32LE(4) };
}

/** RTM_NEWADDR / RTM_DELADDR body. Like `ip addr add`, IFA_LOCAL and IFA_ADDRESS both carry the address. */
export function encodeAddr(s: AddrSpec): Buffer {
  const bytes = ipToBytes(s.addr);
  return Buffer.concat([
    encodeIfAddrMsg({ family: familyToAf(s.addr.family), prefixLen: s.prefixLen, flags: s.flags ?? 0, scope: s.scope ?? RT_SCOPE_UNIVERSE, index: s.index }),
    attr(IFA_LOCAL, bytes),
    attr(IFA_ADDRESS, bytes),
  ]);
}

/** RTM_GETADDR dump request body; family 0 dumps both. */
export function encodeAddrDump(af: number): Buffer {
  return encodeIfAddrMsg({ family: af, prefixLen: 0, flags: 0, scope: 0, index: 0 });
}

export function decodeAddr(p: Buffer): Decoded<Addr> {
  return guard('address', () => {
    const h = decodeIfAddrMsg(p);
    const family = afToFamily(h.family);
    if (family === undefined) throw new DecodeError(`address family ${h.family} is not inet/inet6`);
    const a = Attrs.parse(p.subarray(IFADDRMSG_LEN), 'address attributes');
    const localB = a.raw(IFA_LOCAL);
    const addrB = a.raw(IFA_ADDRESS);
    const local = localB ? bytesToIp(localB) : undefined;
    const address = addrB ? bytesToIp(addrB) : undefined;
    const ip = local ?? address;
    if (!ip) throw new DecodeError(`address on link ${h.index} has no IFA_LOCAL/IFA_ADDRESS of valid length`);
    const out: Addr = { index: h.index, family, addr: ip, prefixLen: h.prefixLen, scope: h.scope, flags: a.u32(IFA_FLAGS) ?? h.flags };
    const label = a.str(IFA_LABEL);
    if (label) out.label = label;
    if (local && address && local.value !== address.value) out.peer = address;
    return out;
  });
}
