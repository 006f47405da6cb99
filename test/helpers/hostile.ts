// Seeded generators of hostile control-plane input for the property tests: random JSON trees whose
// leaves are the values that break parsers (huge/negative/fractional numbers, wrong types, empty
// strings, IPv6 where IPv4 belongs, overlapping networks, prototype-pollution keys, deep nesting).

/** mulberry32: small, fast, deterministic; a failing seed is reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Rand = () => number;
export const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

export const POLLUTION_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'] as const;

const NUMBERS = [0, -0, 1, -1, 8, 24, 32, 33, 64, 128, 129, 255, 256, 65535, 65536, 2 ** 31, 2 ** 32, 2 ** 53 + 2, -(2 ** 63), 1e21, 1e308, 1.5, 0.1, -24, 4096, 16777216] as const;
const STRINGS = [
  '', ' ', '0', '-1', 'true', 'null', 'NaN', 'Infinity', '1e400',
  '198.19.0.0/16', '198.19.0.0/24', '198.19.1.0/24', '198.19.0.0/33', '198.19.0.0/-1', '198.19.0.0/', '198.19.0.0',
  '198.18.0.11', '198.18.0.256', '198.018.0.1', '0.0.0.0', '255.255.255.255', '0.0.0.0/0', '198.19.0.1/16',
  '2001:db8::1', '2001:db8::/32', '2001:db8:100::/56', '::', '::/0', '::ffff:198.18.0.11', '2001:db8::1/129', '2001:db8::g',
  'fe80::1%eth0', '198.19.0.0/16\n', ' 198.19.0.0/16', '198.19.0.0/16,198.20.0.0/16',
  'udp', 'vxlan', 'host-gw', 'ipip', 'wireguard', 'alloc', 'UDP', 'Vxlan',
  '__proto__', 'constructor', '{"__proto__":{"polluted":1}}', '{}', '[]', 'null', '{"VNI":1}',
  'd2:5e:7f:06:2e:52', 'zz:zz', 'a'.repeat(5000), '\u0000', '\ud800', '💥', '%s%n', '../../etc/passwd', '-iface', '--', '=',
] as const;

const FIELDS = [
  'Network', 'SubnetLen', 'SubnetMin', 'SubnetMax', 'EnableIPv4', 'EnableIPv6', 'IPv6Network', 'IPv6SubnetLen', 'IPv6SubnetMin',
  'IPv6SubnetMax', 'Backend', 'Type', 'VNI', 'Port', 'GBP', 'Learning', 'MTU', 'DirectRouting', 'AllowUnknownSource', 'MacPrefix',
  'network', 'NETWORK', 'PublicIP', 'PublicIPv6', 'BackendType', 'BackendData', 'BackendV6Data', 'VtepMAC', 'Expiration', 'EnableNFTables',
] as const;

export function leaf(r: Rand): unknown {
  switch (Math.floor(r() * 6)) {
    case 0: return pick(r, NUMBERS) * (r() < 0.1 ? -1 : 1);
    case 1: return r() < 0.5;
    case 2: return null;
    case 3: return Math.floor(r() * 2 ** 32) - 2 ** 31;
    default: return pick(r, STRINGS);
  }
}

/** A random JSON-able tree of at most `depth` levels; keys favour real field names and pollution keys. */
export function tree(r: Rand, depth: number): unknown {
  if (depth <= 0 || r() < 0.35) return leaf(r);
  if (r() < 0.3) return Array.from({ length: Math.floor(r() * 4) }, () => tree(r, depth - 1));
  const o: Record<string, unknown> = {};
  const n = Math.floor(r() * 5);
  for (let i = 0; i < n; i++) {
    const k = r() < 0.15 ? pick(r, POLLUTION_KEYS) : r() < 0.85 ? pick(r, FIELDS) : pick(r, STRINGS);
    // defineProperty so "__proto__" is an own key, as JSON.parse makes it.
    Object.defineProperty(o, k, { value: tree(r, depth - 1), enumerable: true, configurable: true, writable: true });
  }
  return o;
}

/** Serialises, sometimes with a text-level mutation (truncation, a flipped byte, raw huge numbers). */
export function text(r: Rand, v: unknown): string {
  let s = JSON.stringify(v) ?? 'null';
  const m = r();
  if (m < 0.05) s = s.slice(0, Math.floor(r() * s.length));
  else if (m < 0.1 && s.length > 0) {
    const i = Math.floor(r() * s.length);
    s = s.slice(0, i) + String.fromCharCode(Math.floor(r() * 128)) + s.slice(i + 1);
  } else if (m < 0.13) s = s.replace(/\d+/, '1e400');
  else if (m < 0.15) s = '['.repeat(5000) + ']'.repeat(5000);
  return s;
}

/** A valid object with one field replaced by garbage: most iterations get past the first check. */
export function mutate(r: Rand, base: Record<string, unknown>): Record<string, unknown> {
  const o: Record<string, unknown> = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  const keys = Object.keys(o);
  const k = r() < 0.8 ? pick(r, keys) : pick(r, [...FIELDS, ...POLLUTION_KEYS]);
  if (r() < 0.2) delete o[k];
  else Object.defineProperty(o, k, { value: r() < 0.7 ? leaf(r) : tree(r, 3), enumerable: true, configurable: true, writable: true });
  return o;
}

/** Error messages that betray an unguarded JavaScript failure rather than a validation message. */
export const ENGINE_ERROR = /Cannot read prop|Cannot convert|is not a function|is not iterable|is not an object|Maximum call stack|Invalid array length|Cannot mix BigInt|Do not know how to serialize|undefined \(reading/;

/** Throws if anything leaked onto Object.prototype (a prototype-pollution bug). */
export function assertNoPollution(): void {
  const own = Object.getOwnPropertyNames(Object.prototype).sort().join(',');
  const probe = {} as Record<string, unknown>;
  if (probe.polluted !== undefined || probe.Network !== undefined || probe.Type !== undefined || own !== PROTO_KEYS) {
    throw new Error(`Object.prototype was polluted: ${own}`);
  }
}
const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).sort().join(',');
