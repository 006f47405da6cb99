// The kernel WireGuard's generic-netlink messages (linux/wireguard.h): WG_CMD_SET_DEVICE with the
// nested peer and allowed-IP lists, WG_CMD_GET_DEVICE as a dump whose replies are coalesced (a peer
// or the peer list may continue in the next message), and RTM_NEWLINK for a "wireguard" link.
// Verified against byte fixtures built from the uapi layout only: this machine's kernel has no
// WireGuard to talk to.
import { familyToAf, afToFamily, ipToBytes, bytesToIp } from '../addr.js';
import { attr, attrNested, attrString, attrU16, attrU32, attrU8, Attrs, decodeAttrs, DecodeError, decodeMessages, encodeMessage, fail, guard, ok, type Decoded, type NlMessage } from '../codec.js';
import { IFLA_IFNAME, IFLA_INFO_KIND, IFLA_LINKINFO, IFLA_MTU, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_DONE, RTM_NEWLINK } from '../constants.js';
import { encodeIfInfoMsg } from '../link-msg.js';
import type { IPAddr, IPNet } from '../../ip/index.js';
import { decodeGenl, encodeGenl } from './genl.js';
import * as C from './constants.js';

export interface WgEndpoint {
  ip: IPAddr;
  port: number;
}

export interface WgSetPeer {
  publicKey: Buffer;
  remove?: boolean;
  updateOnly?: boolean;
  replaceAllowedIPs?: boolean;
  /** All zeros removes the PSK. */
  presharedKey?: Buffer;
  endpoint?: WgEndpoint;
  persistentKeepalive?: number;
  allowedIPs?: IPNet[];
}

export interface WgSetDevice {
  /** One of ifindex / ifname. */
  ifindex?: number;
  ifname?: string;
  privateKey?: Buffer;
  listenPort?: number;
  fwmark?: number;
  replacePeers?: boolean;
  peers?: WgSetPeer[];
}

/** struct sockaddr_in / sockaddr_in6: family in host order, port in network order. */
export function encodeSockaddr(e: WgEndpoint): Buffer {
  const b = Buffer.alloc(e.ip.family === 4 ? 16 : 28);
  b.writeUInt16LE(familyToAf(e.ip.family), 0);
  b.writeUInt16BE(e.port, 2);
  ipToBytes(e.ip).copy(b, e.ip.family === 4 ? 4 : 8);
  return b;
}

export function decodeSockaddr(b: Buffer): WgEndpoint | undefined {
  if (b.length < 2) return undefined;
  const fam = afToFamily(b.readUInt16LE(0));
  if (fam === 4 && b.length >= 16) return { ip: bytesToIp(b.subarray(4, 8))!, port: b.readUInt16BE(2) };
  if (fam === 6 && b.length >= 28) return { ip: bytesToIp(b.subarray(8, 24))!, port: b.readUInt16BE(2) };
  return undefined;
}

function encodeAllowedIP(n: IPNet): Buffer {
  // List entries are nested attributes of type 0, as the kernel and wg(8) write them.
  return attrNested(0, [attrU16(C.WGALLOWEDIP_A_FAMILY, familyToAf(n.family)), attr(C.WGALLOWEDIP_A_IPADDR, ipToBytes(n)), attrU8(C.WGALLOWEDIP_A_CIDR_MASK, n.prefixLen)]);
}

function encodePeer(p: WgSetPeer): Buffer {
  let flags = 0;
  if (p.remove) flags |= C.WGPEER_F_REMOVE_ME;
  if (p.replaceAllowedIPs) flags |= C.WGPEER_F_REPLACE_ALLOWEDIPS;
  if (p.updateOnly) flags |= C.WGPEER_F_UPDATE_ONLY;
  const a: Buffer[] = [attr(C.WGPEER_A_PUBLIC_KEY, p.publicKey)];
  if (flags) a.push(attrU32(C.WGPEER_A_FLAGS, flags));
  if (p.presharedKey) a.push(attr(C.WGPEER_A_PRESHARED_KEY, p.presharedKey));
  if (p.endpoint) a.push(attr(C.WGPEER_A_ENDPOINT, encodeSockaddr(p.endpoint)));
  if (p.persistentKeepalive !== undefined) a.push(attrU16(C.WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p.persistentKeepalive));
  if (p.allowedIPs) a.push(attrNested(C.WGPEER_A_ALLOWEDIPS, p.allowedIPs.map(encodeAllowedIP)));
  return attrNested(0, a);
}

/** WG_CMD_SET_DEVICE (one message; flannel's configurations are far below the size limit). */
export function encodeSetDevice(family: number, d: WgSetDevice, seq: number, pid: number): Buffer {
  const a: Buffer[] = [];
  if (d.ifindex !== undefined) a.push(attrU32(C.WGDEVICE_A_IFINDEX, d.ifindex));
  else if (d.ifname !== undefined) a.push(attrString(C.WGDEVICE_A_IFNAME, d.ifname));
  else throw new Error('WG_CMD_SET_DEVICE needs an ifindex or an ifname');
  if (d.privateKey) a.push(attr(C.WGDEVICE_A_PRIVATE_KEY, d.privateKey));
  if (d.listenPort !== undefined) a.push(attrU16(C.WGDEVICE_A_LISTEN_PORT, d.listenPort));
  if (d.fwmark !== undefined) a.push(attrU32(C.WGDEVICE_A_FWMARK, d.fwmark));
  if (d.replacePeers) a.push(attrU32(C.WGDEVICE_A_FLAGS, C.WGDEVICE_F_REPLACE_PEERS));
  if (d.peers?.length) a.push(attrNested(C.WGDEVICE_A_PEERS, d.peers.map(encodePeer)));
  return encodeGenl(family, NLM_F_REQUEST | NLM_F_ACK, seq, pid, { cmd: C.WG_CMD_SET_DEVICE, version: C.WG_GENL_VERSION }, a);
}

/** WG_CMD_GET_DEVICE: a dump request naming one device. */
export function encodeGetDevice(family: number, dev: { ifindex?: number; ifname?: string }, seq: number, pid: number): Buffer {
  const a = dev.ifindex !== undefined ? attrU32(C.WGDEVICE_A_IFINDEX, dev.ifindex) : attrString(C.WGDEVICE_A_IFNAME, dev.ifname ?? '');
  return encodeGenl(family, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP, seq, pid, { cmd: C.WG_CMD_GET_DEVICE, version: C.WG_GENL_VERSION }, [a]);
}

/** The body of RTM_NEWLINK for a WireGuard device (`ip link add <name> mtu <mtu> type wireguard`). */
export function wireguardLinkBody(name: string, mtu: number): Buffer {
  return Buffer.concat([encodeIfInfoMsg({}), attrString(IFLA_IFNAME, name), attrU32(IFLA_MTU, mtu), attrNested(IFLA_LINKINFO, [attrString(IFLA_INFO_KIND, 'wireguard')])]);
}

export function encodeNewWireguardLink(name: string, mtu: number, seq: number, pid: number): Buffer {
  return encodeMessage({ type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, pid }, wireguardLinkBody(name, mtu));
}

export interface WgPeerInfo {
  publicKey: Buffer;
  presharedKey?: Buffer;
  endpoint?: WgEndpoint;
  persistentKeepalive: number;
  lastHandshakeSec: bigint;
  lastHandshakeNsec: bigint;
  rxBytes: bigint;
  txBytes: bigint;
  protocolVersion: number;
  allowedIPs: IPNet[];
}

export interface WgDeviceInfo {
  ifindex: number;
  ifname: string;
  privateKey?: Buffer;
  publicKey?: Buffer;
  listenPort: number;
  fwmark: number;
  peers: WgPeerInfo[];
}

const u64 = (b: Buffer | undefined): bigint => (b && b.length >= 8 ? b.readBigUInt64LE(0) : 0n);

function list(buf: Buffer | undefined, where: string): Attrs[] {
  if (!buf) return [];
  const r = decodeAttrs(buf);
  if (!r.ok) throw new DecodeError(`${where}: ${r.error}`);
  return r.value.map((x) => new Attrs(decodeAttrsOrThrow(x.data, where)));
}

function decodeAttrsOrThrow(b: Buffer, where: string) {
  const r = decodeAttrs(b);
  if (!r.ok) throw new DecodeError(`${where}: ${r.error}`);
  return r.value;
}

function decodeAllowedIP(a: Attrs): IPNet {
  const fam = afToFamily(a.raw(C.WGALLOWEDIP_A_FAMILY)?.readUInt16LE(0) ?? -1);
  const ip = a.raw(C.WGALLOWEDIP_A_IPADDR);
  const mask = a.u8(C.WGALLOWEDIP_A_CIDR_MASK);
  if (!fam || !ip || mask === undefined || ip.length < (fam === 4 ? 4 : 16)) throw new DecodeError('allowed IP without family, address or mask');
  const addr = bytesToIp(ip.subarray(0, fam === 4 ? 4 : 16))!;
  if (mask > (fam === 4 ? 32 : 128)) throw new DecodeError(`allowed IP mask ${mask} too long`);
  return { family: fam, value: addr.value, prefixLen: mask };
}

function decodePeer(a: Attrs): WgPeerInfo {
  const key = a.raw(C.WGPEER_A_PUBLIC_KEY);
  if (!key || key.length !== C.WG_KEY_LEN) throw new DecodeError('peer without a 32-byte public key');
  const ts = a.raw(C.WGPEER_A_LAST_HANDSHAKE_TIME);
  const ep = a.raw(C.WGPEER_A_ENDPOINT);
  const ka = a.raw(C.WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL);
  return {
    publicKey: Buffer.from(key),
    presharedKey: a.raw(C.WGPEER_A_PRESHARED_KEY) ? Buffer.from(a.raw(C.WGPEER_A_PRESHARED_KEY)!) : undefined,
    endpoint: ep ? decodeSockaddr(ep) : undefined,
    persistentKeepalive: ka && ka.length >= 2 ? ka.readUInt16LE(0) : 0,
    lastHandshakeSec: ts && ts.length >= 16 ? ts.readBigInt64LE(0) : 0n,
    lastHandshakeNsec: ts && ts.length >= 16 ? ts.readBigInt64LE(8) : 0n,
    rxBytes: u64(a.raw(C.WGPEER_A_RX_BYTES)),
    txBytes: u64(a.raw(C.WGPEER_A_TX_BYTES)),
    protocolVersion: a.u32(C.WGPEER_A_PROTOCOL_VERSION) ?? 0,
    allowedIPs: list(a.raw(C.WGPEER_A_ALLOWEDIPS), 'allowed IPs').map(decodeAllowedIP),
  };
}

/**
 * The replies of a WG_CMD_GET_DEVICE dump (datagrams in order) as one device: a peer repeated at the
 * start of the next message (only its key and more allowed IPs) is merged into the previous one.
 */
export function decodeGetDevice(family: number, datagrams: Buffer[]): Decoded<WgDeviceInfo> {
  const all: NlMessage[] = [];
  for (const d of datagrams) {
    const msgs = decodeMessages(d);
    if (!msgs.ok) return msgs;
    for (const m of msgs.value) {
      if (m.type === NLMSG_DONE) {
        const err = m.payload.length >= 4 ? m.payload.readInt32LE(0) : 0;
        if (err < 0) return fail(`WG_CMD_GET_DEVICE: errno ${-err}`);
        return all.length ? decodeDeviceMessages(family, all) : fail('WG_CMD_GET_DEVICE: no device in the reply');
      }
      all.push(m);
    }
  }
  if (!all.some((m) => m.type === family)) return fail('WG_CMD_GET_DEVICE: no reply');
  const partial = decodeDeviceMessages(family, all);
  return partial.ok ? fail('WG_CMD_GET_DEVICE: the dump did not end (no NLMSG_DONE)') : partial;
}

/** The data messages of a WG_CMD_GET_DEVICE dump (without its NLMSG_DONE) as one device. */
export function decodeDeviceMessages(family: number, msgs: NlMessage[]): Decoded<WgDeviceInfo> {
  let dev: WgDeviceInfo | undefined;
  for (const m of msgs) {
    if (m.type !== family) continue;
    const g = decodeGenl(m);
    if (!g.ok) return g;
    const r = guard('WG_CMD_GET_DEVICE', () => {
      const a = Attrs.parse(g.value.attrs, 'device attributes');
      if (!dev) {
        dev = {
          ifindex: a.u32(C.WGDEVICE_A_IFINDEX) ?? 0,
          ifname: a.str(C.WGDEVICE_A_IFNAME) ?? '',
          privateKey: a.raw(C.WGDEVICE_A_PRIVATE_KEY) ? Buffer.from(a.raw(C.WGDEVICE_A_PRIVATE_KEY)!) : undefined,
          publicKey: a.raw(C.WGDEVICE_A_PUBLIC_KEY) ? Buffer.from(a.raw(C.WGDEVICE_A_PUBLIC_KEY)!) : undefined,
          listenPort: a.raw(C.WGDEVICE_A_LISTEN_PORT)?.readUInt16LE(0) ?? 0,
          fwmark: a.u32(C.WGDEVICE_A_FWMARK) ?? 0,
          peers: [],
        };
      }
      for (const pa of list(a.raw(C.WGDEVICE_A_PEERS), 'peers')) {
        const p = decodePeer(pa);
        const last = dev.peers[dev.peers.length - 1];
        if (last && last.publicKey.equals(p.publicKey)) last.allowedIPs.push(...p.allowedIPs);
        else dev.peers.push(p);
      }
    });
    if (!r.ok) return r;
  }
  return dev ? ok(dev) : fail('WG_CMD_GET_DEVICE: no device in the reply');
}
