// WireGuard's cross-platform userspace configuration protocol ("UAPI", wireguard.com/xplatform) as
// wireguard-go serves it (device/uapi.go, ipc/): `get=1\n\n` answered with key=value lines, `set=1\n`
// followed by key=value lines and a blank line; every reply ends `errno=N\n\n` (0 or a negative errno).
// Keys are hex. Pure functions: the server (uapi-server.ts) and the tests share them.
import { formatCIDR, formatIP, maskNet, parseIP, parseIPWithPrefix, type IPAddr, type IPNet } from '../../ip/index.js';

export const EINVAL = -22;
export const EPROTO = -71;
export const EIO = -5;
export const EADDRINUSE = -98;

export class UapiError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

export interface UapiPeerState {
  publicKey: Buffer;
  presharedKey?: Buffer;
  endpoint?: { ip: IPAddr; port: number };
  lastHandshakeSec: number;
  lastHandshakeNsec: number;
  txBytes: bigint;
  rxBytes: bigint;
  persistentKeepalive: number;
  allowedIPs: IPNet[];
}

export interface UapiDeviceState {
  privateKey?: Buffer;
  listenPort: number;
  fwmark: number;
  peers: UapiPeerState[];
}

export const formatEndpointText = (e: { ip: IPAddr; port: number }): string => (e.ip.family === 4 ? `${formatIP(e.ip)}:${e.port}` : `[${formatIP(e.ip)}]:${e.port}`);

/** The body of a get reply, in wireguard-go's order (without the errno line). */
export function formatGet(d: UapiDeviceState): string {
  const lines: string[] = [];
  const zero = (b: Buffer): boolean => b.every((x) => x === 0);
  if (d.privateKey && !zero(d.privateKey)) lines.push(`private_key=${d.privateKey.toString('hex')}`);
  if (d.listenPort !== 0) lines.push(`listen_port=${d.listenPort}`);
  if (d.fwmark !== 0) lines.push(`fwmark=${d.fwmark}`);
  for (const p of d.peers) {
    lines.push(`public_key=${p.publicKey.toString('hex')}`);
    lines.push(`preshared_key=${(p.presharedKey ?? Buffer.alloc(32)).toString('hex')}`);
    lines.push('protocol_version=1');
    if (p.endpoint) lines.push(`endpoint=${formatEndpointText(p.endpoint)}`);
    lines.push(`last_handshake_time_sec=${p.lastHandshakeSec}`);
    lines.push(`last_handshake_time_nsec=${p.lastHandshakeNsec}`);
    lines.push(`tx_bytes=${p.txBytes}`);
    lines.push(`rx_bytes=${p.rxBytes}`);
    lines.push(`persistent_keepalive_interval=${p.persistentKeepalive}`);
    for (const a of p.allowedIPs) lines.push(`allowed_ip=${formatCIDR(a)}`);
  }
  return lines.map((l) => l + '\n').join('');
}

export const formatErrno = (errno: number): string => `errno=${errno}\n\n`;

export interface UapiSetPeer {
  publicKey: Buffer;
  remove: boolean;
  updateOnly: boolean;
  presharedKey?: Buffer;
  endpoint?: { ip: IPAddr; port: number };
  persistentKeepalive?: number;
  replaceAllowedIPs: boolean;
  /** In order; remove: `allowed_ip=-<prefix>`. */
  allowedIPs: { net: IPNet; remove: boolean }[];
}

export interface UapiSet {
  /** All zeros: remove the key. */
  privateKey?: Buffer;
  listenPort?: number;
  fwmark?: number;
  replacePeers: boolean;
  peers: UapiSetPeer[];
}

function hexKey(value: string, what: string): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(value)) throw new UapiError(EINVAL, `failed to set ${what}: invalid hex key`);
  return Buffer.from(value, 'hex');
}

function uint(value: string, bits: number, what: string): number {
  const max = 2 ** bits - 1;
  if (!/^[0-9]+$/.test(value) || Number(value) > max) throw new UapiError(EINVAL, `failed to parse ${what}: ${JSON.stringify(value)} is not 0..${max}`);
  return Number(value);
}

function mustBeTrue(value: string, what: string): void {
  if (value !== 'true') throw new UapiError(EINVAL, `failed to set ${what}, invalid value: ${value}`);
}

/** netip.ParseAddrPort: "ip:port" or "[ip6]:port". */
export function parseEndpointText(value: string): { ip: IPAddr; port: number } | undefined {
  const m = /^\[([^\]]+)\]:([0-9]+)$/.exec(value) ?? /^([0-9.]+):([0-9]+)$/.exec(value);
  const ip = m ? parseIP(m[1]!) : undefined;
  if (!m || !ip || (m[0].startsWith('[') !== (ip.family === 6)) || Number(m[2]) > 65535) return undefined;
  return { ip, port: Number(m[2]) };
}

/** The lines of a set request up to (not including) the blank line, as wireguard-go's IpcSetOperation reads them. */
export function parseSet(lines: string[]): UapiSet {
  const out: UapiSet = { replacePeers: false, peers: [] };
  let peer: UapiSetPeer | undefined;
  for (const line of lines) {
    const eq = line.indexOf('=');
    if (eq < 0) throw new UapiError(EPROTO, `failed to parse line ${JSON.stringify(line)}`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'public_key') {
      peer = { publicKey: hexKey(value, 'public_key'), remove: false, updateOnly: false, replaceAllowedIPs: false, allowedIPs: [] };
      out.peers.push(peer);
      continue;
    }
    if (!peer) {
      switch (key) {
        case 'private_key':
          out.privateKey = hexKey(value, 'private_key');
          break;
        case 'listen_port':
          out.listenPort = uint(value, 16, 'listen_port');
          break;
        case 'fwmark':
          out.fwmark = uint(value, 32, 'fwmark');
          break;
        case 'replace_peers':
          mustBeTrue(value, 'replace_peers');
          out.replacePeers = true;
          break;
        default:
          throw new UapiError(EINVAL, `invalid UAPI device key: ${key}`);
      }
      continue;
    }
    switch (key) {
      case 'update_only':
        mustBeTrue(value, 'update only');
        peer.updateOnly = true;
        break;
      case 'remove':
        mustBeTrue(value, 'remove');
        peer.remove = true;
        break;
      case 'preshared_key':
        peer.presharedKey = hexKey(value, 'preshared key');
        break;
      case 'endpoint': {
        const ep = parseEndpointText(value);
        if (!ep) throw new UapiError(EINVAL, `failed to set endpoint ${value}`);
        peer.endpoint = ep;
        break;
      }
      case 'persistent_keepalive_interval':
        peer.persistentKeepalive = uint(value, 16, 'persistent keepalive interval');
        break;
      case 'replace_allowed_ips':
        mustBeTrue(value, 'replace allowedips');
        peer.replaceAllowedIPs = true;
        break;
      case 'allowed_ip': {
        const remove = value.startsWith('-');
        const p = parseIPWithPrefix(remove ? value.slice(1) : value);
        if (!p) throw new UapiError(EINVAL, `failed to set allowed ip: ${value}`);
        peer.allowedIPs.push({ net: maskNet({ family: p.ip.family, value: p.ip.value, prefixLen: p.prefixLen }), remove });
        break;
      }
      case 'protocol_version':
        if (value !== '1') throw new UapiError(EINVAL, `invalid protocol version: ${value}`);
        break;
      default:
        throw new UapiError(EINVAL, `invalid UAPI peer key: ${key}`);
    }
  }
  return out;
}

/** A get reply as a client reads it (our tests; `flannelctl` could use it for a socket it finds). */
export function parseGetReply(text: string): { device: UapiDeviceState; errno: number } {
  const device: UapiDeviceState = { listenPort: 0, fwmark: 0, peers: [] };
  let errno = EPROTO;
  let peer: UapiPeerState | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'errno') errno = Number(value);
    else if (key === 'private_key') device.privateKey = Buffer.from(value, 'hex');
    else if (key === 'listen_port') device.listenPort = Number(value);
    else if (key === 'fwmark') device.fwmark = Number(value);
    else if (key === 'public_key') {
      peer = { publicKey: Buffer.from(value, 'hex'), lastHandshakeSec: 0, lastHandshakeNsec: 0, txBytes: 0n, rxBytes: 0n, persistentKeepalive: 0, allowedIPs: [] };
      device.peers.push(peer);
    } else if (peer) {
      if (key === 'preshared_key') peer.presharedKey = Buffer.from(value, 'hex');
      else if (key === 'endpoint') peer.endpoint = parseEndpointText(value);
      else if (key === 'last_handshake_time_sec') peer.lastHandshakeSec = Number(value);
      else if (key === 'last_handshake_time_nsec') peer.lastHandshakeNsec = Number(value);
      else if (key === 'tx_bytes') peer.txBytes = BigInt(value);
      else if (key === 'rx_bytes') peer.rxBytes = BigInt(value);
      else if (key === 'persistent_keepalive_interval') peer.persistentKeepalive = Number(value);
      else if (key === 'allowed_ip') {
        const p = parseIPWithPrefix(value);
        if (p) peer.allowedIPs.push({ family: p.ip.family, value: p.ip.value, prefixLen: p.prefixLen });
      }
    }
  }
  return { device, errno };
}

export type UapiRequest = { op: 'get' } | { op: 'set'; lines: string[] } | { op: 'bad'; errno: number; message: string; close: boolean };

/**
 * Splits a connection's byte stream into requests, as wireguard-go's IpcHandle reads it: an operation
 * line, then for get one more newline, for set lines up to a blank one. Anything else ends the
 * connection (wireguard-go closes it without a reply).
 */
export class UapiFramer {
  private buf = '';
  private set: string[] | undefined;

  push(chunk: string): UapiRequest[] {
    this.buf += chunk;
    const out: UapiRequest[] = [];
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) {
        if (this.buf.length > 1 << 20) {
          this.buf = '';
          out.push({ op: 'bad', errno: EIO, message: 'request line too long', close: true });
        }
        return out;
      }
      const line = this.buf.slice(0, nl);
      if (this.set) {
        this.buf = this.buf.slice(nl + 1);
        if (line === '') {
          out.push({ op: 'set', lines: this.set });
          this.set = undefined;
        } else this.set.push(line);
        continue;
      }
      if (line === 'set=1') {
        this.buf = this.buf.slice(nl + 1);
        this.set = [];
        continue;
      }
      if (line === 'get=1') {
        if (this.buf.length < nl + 2) return out; // the byte after the newline decides
        const next = this.buf[nl + 1];
        this.buf = this.buf.slice(nl + 2);
        out.push(next === '\n' ? { op: 'get' } : { op: 'bad', errno: EINVAL, message: `trailing character in UAPI get: ${JSON.stringify(next)}`, close: false });
        continue;
      }
      this.buf = '';
      out.push({ op: 'bad', errno: EPROTO, message: `invalid UAPI operation: ${JSON.stringify(line.slice(0, 40))}`, close: true });
      return out;
    }
  }
}
