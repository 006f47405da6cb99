// Parsing and formatting of single IPv4/IPv6 addresses with Go's net.ParseIP / net.IP.String semantics,
// because flannel's keys, logs and subnet.env are produced by Go and we must produce the same text.
import type { Family, IPAddr } from './types.js';

export const V4_BITS = 32;
export const V6_BITS = 128;
const V4_MAPPED_PREFIX = 0xffffn << 32n;

export function familyBits(family: Family): number {
  return family === 4 ? V4_BITS : V6_BITS;
}

/** The largest value an address of this family can hold. */
export function maxValue(family: Family): bigint {
  return (1n << BigInt(familyBits(family))) - 1n;
}

/** Dotted-quad IPv4 as Go accepts it: four decimal fields 0..255, no leading zeros, no signs or spaces. */
function parseV4Value(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

/** IPv6 text (RFC 4291 §2.2): hex groups, at most one `::`, optional trailing dotted IPv4. No zones. */
function parseV6Value(s: string): bigint | undefined {
  if (s.length === 0 || s.length > 45) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (text: string, allowV4Tail: boolean): bigint[] | undefined => {
    if (text === '') return [];
    const fields = text.split(':');
    const groups: bigint[] = [];
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i] ?? '';
      if (allowV4Tail && i === fields.length - 1 && field.includes('.')) {
        const v4 = parseV4Value(field);
        if (v4 === undefined) return undefined;
        groups.push(v4 >> 16n, v4 & 0xffffn);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(field)) {
        groups.push(BigInt('0x' + field));
      } else {
        return undefined;
      }
    }
    return groups;
  };
  const compressed = halves.length === 2;
  const head = parseGroups(halves[0] ?? '', !compressed);
  const tail = compressed ? parseGroups(halves[1] ?? '', true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const present = head.length + tail.length;
  if (compressed ? present > 7 : present !== 8) return undefined;
  const groups = [...head, ...new Array<bigint>(8 - present).fill(0n), ...tail];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/**
 * Parses an IPv4 or IPv6 address; undefined when invalid. Like Go, an IPv4-mapped IPv6 address
 * (`::ffff:198.18.0.1`) is the IPv4 address (Go's To4() accepts it and String() prints it dotted).
 */
export function parseIP(s: string): IPAddr | undefined {
  if (s.includes(':')) {
    const value = parseV6Value(s);
    if (value === undefined) return undefined;
    if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
    return { family: 6, value };
  }
  const value = parseV4Value(s);
  return value === undefined ? undefined : { family: 4, value };
}

/** parseIP that throws an Error naming the text; for callers that report their own field name. */
export function mustParseIP(s: string): IPAddr {
  const ip = parseIP(s);
  if (!ip) throw new Error(`invalid IP address "${s}"`);
  return ip;
}

function formatV4Value(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

/** Canonical text: dotted IPv4; IPv6 per RFC 5952 (lowercase, longest zero run of ≥2 groups as `::`). */
export function formatIP(ip: IPAddr): string {
  if (ip.family === 4) return formatV4Value(ip.value);
  // Go's net.IP.String prints IPv4-mapped addresses in dotted form.
  if (ip.value >> 32n === V4_MAPPED_PREFIX >> 32n) return formatV4Value(ip.value & 0xffffffffn);
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((ip.value >> shift) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestLen < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function ipEqual(a: IPAddr, b: IPAddr): boolean {
  return a.family === b.family && a.value === b.value;
}
