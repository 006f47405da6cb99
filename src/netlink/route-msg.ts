// RTM_*ROUTE bodies: struct rtmsg + RTA_* attributes.
import type { IPAddr } from '../ip/types.js';
import { afToFamily, bytesToIp, familyToAf, ipToBytes } from './addr.js';
import {
  RT_SCOPE_LINK,
  RT_SCOPE_NOWHERE,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_COMPAT,
  RT_TABLE_MAIN,
  RTA_DST,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_TABLE,
  RTMSG_LEN,
  RTN_UNICAST,
  RTNH_F_ONLINK,
  RTPROT_BOOT,
} from './constants.js';
import { Attrs, DecodeError, attr, attrU32, guard, type Decoded } from './codec.js';
import type { Route, RouteGetResult, RouteSpec } from './types.js';

export interface RtMsg {
  family: number;
  dstLen: number;
  srcLen: number;
  tos: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
}

export function encodeRtMsg(m: RtMsg): Buffer {
  const b = Buffer.alloc(RTMSG_LEN);
  b.writeUInt8(m.family, 0);
  b.writeUInt8(m.dstLen, 1);
  b.writeUInt8(m.srcLen, 2);
  b.writeUInt8(m.tos, 3);
  b.writeUInt8(m.table, 4);
  b.writeUInt8(m.protocol, 5);
  b.writeUInt8(m.scope, 6);
  b.writeUInt8(m.type, 7);
  b.writeUInt32LE(m.flags >>> 0, 8);
  return b;
}

export function decodeRtMsg(p: Buffer): RtMsg {
  if (p.length < RTMSG_LEN) throw new DecodeError(`rtmsg: ${p.length} bytes, need ${RTMSG_LEN}`);
  return {
    family: p.readUInt8(0),
    dstLen: p.readUInt8(1),
    srcLen: p.readUInt8(2),
    tos: p.readUInt8(3),
    table: p.readUInt8(4),
    protocol: p.readUInt8(5),
    scope: p.readUInt8(6),
    type: p.readUInt8(7),
    flags: p.readUInt32LE(8),
  };
}

/**
 * RTM_NEWROUTE / RTM_DELROUTE body. For deletes, an unspecified scope is RT_SCOPE_NOWHERE, which the
 * kernel treats as "any scope" (as `ip route del` does), so callers need not know how it was added.
 */
export function encodeRoute(r: RouteSpec, forDelete = false): Buffer {
  const table = r.table ?? RT_TABLE_MAIN;
  const defaultScope = forDelete ? RT_SCOPE_NOWHERE : r.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  const head = encodeRtMsg({
    family: familyToAf(r.dst.family),
    dstLen: r.dst.prefixLen,
    srcLen: 0,
    tos: 0,
    // Tables above 255 only fit in RTA_TABLE; the u8 field then says "see the attribute".
    table: table > 255 ? RT_TABLE_COMPAT : table,
    protocol: r.protocol ?? (forDelete ? 0 : RTPROT_BOOT),
    scope: r.scope ?? defaultScope,
    type: r.type ?? RTN_UNICAST,
    flags: r.onlink ? RTNH_F_ONLINK : 0,
  });
  const parts = [head, attrU32(RTA_TABLE, table)];
  if (r.dst.prefixLen > 0) parts.push(attr(RTA_DST, ipToBytes(r.dst)));
  if (r.prefsrc) parts.push(attr(RTA_PREFSRC, ipToBytes(r.prefsrc)));
  if (r.gateway) parts.push(attr(RTA_GATEWAY, ipToBytes(r.gateway)));
  if (r.oif !== undefined) parts.push(attrU32(RTA_OIF, r.oif));
  if (r.priority !== undefined) parts.push(attrU32(RTA_PRIORITY, r.priority));
  return Buffer.concat(parts);
}

/** RTM_GETROUTE dump request body. */
export function encodeRouteDump(af: number): Buffer {
  return encodeRtMsg({ family: af, dstLen: 0, srcLen: 0, tos: 0, table: 0, protocol: 0, scope: 0, type: 0, flags: 0 });
}

/** RTM_GETROUTE for one destination: the kernel answers with the route it would use (`ip route get`). */
export function encodeRouteGet(dst: IPAddr): Buffer {
  const bits = dst.family === 4 ? 32 : 128;
  return Buffer.concat([
    encodeRtMsg({ family: familyToAf(dst.family), dstLen: bits, srcLen: 0, tos: 0, table: 0, protocol: 0, scope: 0, type: 0, flags: 0 }),
    attr(RTA_DST, ipToBytes(dst)),
  ]);
}

function ipAttr(a: Attrs, type: number, want: 4 | 16): IPAddr | undefined {
  const b = a.raw(type);
  if (b === undefined) return undefined;
  if (b.length !== want) throw new DecodeError(`address attribute ${type} has ${b.length} bytes, need ${want}`);
  return bytesToIp(b);
}

export function decodeRoute(p: Buffer): Decoded<Route> {
  return guard('route', () => {
    const h = decodeRtMsg(p);
    const family = afToFamily(h.family);
    if (family === undefined) throw new DecodeError(`route family ${h.family} is not inet/inet6`);
    const n = family === 4 ? 4 : 16;
    if (h.dstLen > n * 8) throw new DecodeError(`route prefix length ${h.dstLen} too long for IPv${family}`);
    const a = Attrs.parse(p.subarray(RTMSG_LEN), 'route attributes');
    const dst = ipAttr(a, RTA_DST, n);
    const r: Route = {
      family,
      dst: { family, value: dst?.value ?? 0n, prefixLen: h.dstLen },
      onlink: (h.flags & RTNH_F_ONLINK) !== 0,
      table: a.u32(RTA_TABLE) ?? h.table,
      scope: h.scope,
      protocol: h.protocol,
      type: h.type,
      flags: h.flags,
    };
    const gw = ipAttr(a, RTA_GATEWAY, n);
    if (gw) r.gateway = gw;
    const oif = a.u32(RTA_OIF);
    if (oif !== undefined) r.oif = oif;
    const prio = a.u32(RTA_PRIORITY);
    if (prio !== undefined) r.priority = prio;
    const src = ipAttr(a, RTA_PREFSRC, n);
    if (src) r.prefsrc = src;
    return r;
  });
}

export function decodeRouteGet(p: Buffer): Decoded<RouteGetResult> {
  const r = decodeRoute(p);
  if (!r.ok) return r;
  const out: RouteGetResult = { table: r.value.table };
  if (r.value.oif !== undefined) out.oif = r.value.oif;
  if (r.value.prefsrc) out.prefsrc = r.value.prefsrc;
  if (r.value.gateway) out.gateway = r.value.gateway;
  return { ok: true, value: out };
}
