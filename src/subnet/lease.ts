// flannel's lease wire format, shared by the etcd and file stores: the key `<ip>-<len>[&<ip6>-<len6>]`
// (pkg/subnet MakeSubnetKey/ParseSubnetKey) and the LeaseAttrs JSON that Go's encoding/json writes
// for pkg/lease.LeaseAttrs: PublicIP always, PublicIPv6 (null when unset), then BackendType,
// BackendData, BackendV6Data only when set ("omitempty"), in that order, compact.
import { formatIP, parseIP } from '../ip/addr.js';
import { formatCIDR, networkOf } from '../ip/cidr.js';
import type { IPNet } from '../ip/types.js';
import type { Lease, LeaseAttrs } from './types.js';
import { goFields, isRecord, parseGoJSON } from '../util/go-json.js';

/** A lease key or value that is not in flannel's format; callers log it and skip the entry. */
export class LeaseFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeaseFormatError';
  }
}

/** Go's zero IP4Net, which flannel writes for an IPv6-only lease: `0.0.0.0-0&<ip6>-<len>`. */
const ZERO_V4: IPNet = { family: 4, value: 0n, prefixLen: 0 };

/** The key's last path element, e.g. `198.19.90.0-24` or `198.19.90.0-24&2001:db8:0:5a::-64`. */
export function makeSubnetKey(subnet: IPNet | undefined, ipv6Subnet?: IPNet): string {
  const part = (n: IPNet): string => `${formatIP({ family: n.family, value: n.value })}-${n.prefixLen}`;
  const v4 = part(subnet ?? ZERO_V4);
  return ipv6Subnet ? `${v4}&${part(ipv6Subnet)}` : v4;
}

/** Full etcd key `<prefix>/subnets/<subnet key>`; a trailing `/` on the prefix is tolerated (Go's path.Join). */
export function subnetKeyPath(prefix: string, subnet: IPNet | undefined, ipv6Subnet?: IPNet): string {
  return `${prefix.replace(/\/+$/, '')}/subnets/${makeSubnetKey(subnet, ipv6Subnet)}`;
}

export interface ParsedSubnetKey {
  /** Undefined for an IPv6-only lease (written as 0.0.0.0-0). */
  subnet?: IPNet;
  ipv6Subnet?: IPNet;
}

const KEY_PATTERN = /^(\d+\.\d+\.\d+\.\d+)-(\d+)(?:&([0-9a-fA-F:]+)-(\d+))?$/;

/** Parses the last path element of a lease key (a full key is accepted too); undefined if malformed. */
export function parseSubnetKey(key: string): ParsedSubnetKey | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const m = KEY_PATTERN.exec(name);
  if (!m) return undefined;
  const ip4 = parseIP(m[1] ?? '');
  const len4 = Number(m[2]);
  if (!ip4 || ip4.family !== 4 || len4 > 32) return undefined;
  const result: ParsedSubnetKey = {};
  // Host bits in a key would make a lease that no peer can route; reject rather than silently mask.
  if (!(ip4.value === 0n && len4 === 0)) {
    const subnet = networkOf(ip4, len4);
    if (subnet.value !== ip4.value) return undefined;
    result.subnet = subnet;
  }
  if (m[3] !== undefined) {
    const ip6 = parseIP(m[3]);
    const len6 = Number(m[4]);
    if (!ip6 || ip6.family !== 6 || len6 > 128) return undefined;
    const subnet6 = networkOf(ip6, len6);
    if (subnet6.value !== ip6.value) return undefined;
    result.ipv6Subnet = subnet6;
  }
  if (!result.subnet && !result.ipv6Subnet) return undefined;
  return result;
}

/** Human form for logs, like flannel's "(ip: 198.19.90.0/24 ipv6: ::/0)". */
export function describeSubnets(subnet: IPNet | undefined, ipv6Subnet: IPNet | undefined): string {
  return `ip: ${subnet ? formatCIDR(subnet) : '0.0.0.0/0'} ipv6: ${ipv6Subnet ? formatCIDR(ipv6Subnet) : '::/0'}`;
}

/** LeaseAttrs → the exact JSON text flannel stores. */
export function encodeLeaseAttrs(attrs: LeaseAttrs): string {
  const parts: string[] = [];
  // Go's ip.IP4 is a value type: an unset PublicIP is written as 0.0.0.0.
  parts.push(`"PublicIP":${JSON.stringify(attrs.publicIP ? formatIP(attrs.publicIP) : '0.0.0.0')}`);
  parts.push(`"PublicIPv6":${attrs.publicIPv6 ? JSON.stringify(formatIP(attrs.publicIPv6)) : 'null'}`);
  if (attrs.backendType) parts.push(`"BackendType":${JSON.stringify(attrs.backendType)}`);
  if (attrs.backendData !== undefined && attrs.backendData !== null) {
    parts.push(`"BackendData":${JSON.stringify(attrs.backendData)}`);
  }
  if (attrs.backendV6Data !== undefined && attrs.backendV6Data !== null) {
    parts.push(`"BackendV6Data":${JSON.stringify(attrs.backendV6Data)}`);
  }
  return `{${parts.join(',')}}`;
}

/** pkg/lease.LeaseAttrs; PublicIPv6 is a pointer and the backend data json.RawMessage, which null clears. */
const LEASE_FIELDS = ['PublicIP', 'PublicIPv6', 'BackendType', 'BackendData', 'BackendV6Data'] as const;

/**
 * flannel's lease JSON → LeaseAttrs. Throws only LeaseFormatError (never anything else), so callers
 * can `catch` it, log, and skip a third party's garbage.
 */
export function decodeLeaseAttrs(text: string): LeaseAttrs {
  const parsed = parseLeaseObject(text);
  const fields = goFields(parsed, LEASE_FIELDS, ['PublicIPv6', 'BackendData', 'BackendV6Data']);
  const attrs: LeaseAttrs = { backendType: '' };

  const pub = fields.get('PublicIP');
  if (pub !== undefined) {
    const ip = typeof pub === 'string' ? parseIP(pub) : undefined;
    if (!ip || ip.family !== 4) throw new LeaseFormatError(`lease PublicIP ${JSON.stringify(pub)} is not an IPv4 address`);
    if (ip.value !== 0n) attrs.publicIP = ip;
  }
  const pub6 = fields.get('PublicIPv6');
  if (pub6 !== undefined) {
    const ip = typeof pub6 === 'string' ? parseIP(pub6) : undefined;
    if (!ip || ip.family !== 6) throw new LeaseFormatError(`lease PublicIPv6 ${JSON.stringify(pub6)} is not an IPv6 address`);
    attrs.publicIPv6 = ip;
  }
  const type = fields.get('BackendType');
  if (type !== undefined) {
    if (typeof type !== 'string') throw new LeaseFormatError(`lease BackendType ${JSON.stringify(type)} is not a string`);
    attrs.backendType = type;
  }
  const data = fields.get('BackendData');
  if (data !== undefined) attrs.backendData = data;
  const data6 = fields.get('BackendV6Data');
  if (data6 !== undefined) attrs.backendV6Data = data6;
  return attrs;
}

/** A lease value (or lease file) as a Go-decoded JSON object; LeaseFormatError otherwise. */
export function parseLeaseObject(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = parseGoJSON(text);
  } catch (e) {
    throw new LeaseFormatError(`lease value is not JSON: ${(e as Error).message}`);
  }
  if (!isRecord(parsed)) throw new LeaseFormatError(`lease value must be a JSON object, got ${text.slice(0, 60)}`);
  return parsed;
}

/** A lease's identity inside this process (maps of peers, logs): its subnets, "-" for a missing family. */
export function leaseKey(l: Lease): string {
  return `${l.subnet ? formatCIDR(l.subnet) : '-'}&${l.ipv6Subnet ? formatCIDR(l.ipv6Subnet) : '-'}`;
}
