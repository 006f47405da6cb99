// net-conf.json parsing and validation with flannel's rules (pkg/subnet/config.go: ParseConfig +
// CheckNetworkConfig). Read as Go's encoding/json reads it (util/go-json.ts: any key case, the last
// duplicate wins, unknown fields ignored); every rejection names the field, the value and the rule.
import { goField, goFields, isRecord, parseGoJSON } from '../util/go-json.js';
import { formatIP, parseIP } from '../ip/addr.js';
import { blockSize, containsIP, formatCIDR, parseCIDR, prefixMask } from '../ip/cidr.js';
import type { Family, IPAddr, IPNet } from '../ip/types.js';
import type { BackendConfig, NetworkConfig } from './types.js';

const KNOWN_FIELDS = [
  'EnableIPv4',
  'EnableIPv6',
  'EnableNFTables',
  'Network',
  'IPv6Network',
  'SubnetMin',
  'SubnetMax',
  'IPv6SubnetMin',
  'IPv6SubnetMax',
  'SubnetLen',
  'IPv6SubnetLen',
  'Backend',
] as const;
type KnownField = (typeof KNOWN_FIELDS)[number];

function fail(msg: string): never {
  throw new Error(`net-conf: ${msg}`);
}

function show(v: unknown): string {
  // JSON.stringify(Infinity) is "null", which would hide the real problem (e.g. 1e400 in the file).
  if (typeof v === 'number') return String(v);
  let text: string | undefined;
  try {
    text = JSON.stringify(v);
  } catch {
    // Nesting deeper than the stack (e.g. 5000 '[' in the file): say what it is, not a RangeError.
    return Array.isArray(v) ? 'a deeply nested array' : 'a deeply nested object';
  }
  return text === undefined ? String(v) : text.length > 60 ? text.slice(0, 57) + '...' : text;
}

/** subnet.Config's fields; Backend is a json.RawMessage, which null clears. */
function pickFields(obj: Record<string, unknown>): Map<KnownField, unknown> {
  return goFields(obj, KNOWN_FIELDS, ['Backend']);
}

function readBool(fields: Map<KnownField, unknown>, name: KnownField, dflt: boolean): boolean {
  const v = fields.get(name);
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') fail(`${name} ${show(v)} is invalid: must be true or false`);
  return v;
}

/** A Go `uint` field: an integer ≥ 0; absent → 0 (flannel's "use the default"). */
function readUint(fields: Map<KnownField, unknown>, name: KnownField): number {
  const v = fields.get(name);
  if (v === undefined) return 0;
  if (typeof v !== 'number') fail(`${name} ${show(v)} is invalid: must be a number`);
  if (!Number.isSafeInteger(v) || v < 0) fail(`${name} ${show(v)} is invalid: must be a whole number ≥ 0`);
  return v;
}

function readNetwork(fields: Map<KnownField, unknown>, name: KnownField, family: Family): IPNet | undefined {
  const v = fields.get(name);
  if (v === undefined) return undefined;
  const example = family === 4 ? '198.19.0.0/16' : '2001:db8:1::/48';
  if (typeof v !== 'string') fail(`${name} ${show(v)} is invalid: must be a CIDR string like "${example}"`);
  const net = parseCIDR(v);
  if (!net) fail(`${name} ${show(v)} is invalid: not a CIDR like "${example}"`);
  if (net.family !== family) fail(`${name} ${show(v)} is invalid: must be an IPv${family} network like "${example}"`);
  return net;
}

function readAddr(fields: Map<KnownField, unknown>, name: KnownField, family: Family): IPAddr | undefined {
  const v = fields.get(name);
  if (v === undefined) return undefined;
  const example = family === 4 ? '198.19.1.0' : '2001:db8:1:1::';
  if (typeof v !== 'string') fail(`${name} ${show(v)} is invalid: must be an address string like "${example}"`);
  const ip = parseIP(v);
  if (!ip) fail(`${name} ${show(v)} is invalid: not an IP address like "${example}"`);
  if (ip.family !== family) fail(`${name} ${show(v)} is invalid: must be an IPv${family} address like "${example}"`);
  return ip;
}

function readBackend(fields: Map<KnownField, unknown>): BackendConfig {
  const v = fields.get('Backend');
  if (v === undefined) return { type: 'udp', raw: { Type: 'udp' } };
  if (!isRecord(v)) fail(`Backend ${show(v)} is invalid: must be an object like {"Type":"vxlan"}`);
  const type = goField(v, 'Type');
  if (type === undefined || type === '') fail(`Backend.Type is missing: set it, e.g. {"Type":"vxlan"}`);
  if (typeof type !== 'string') fail(`Backend.Type ${show(type)} is invalid: must be a string like "vxlan"`);
  return { type, raw: v };
}

interface FamilyRules {
  family: Family;
  networkField: KnownField;
  lenField: KnownField;
  minField: KnownField;
  maxField: KnownField;
  /** Default subnet length when the network is at least this big (prefix ≤ defaultUpTo). */
  defaultLen: number;
  defaultUpTo: number;
  /** Longest network prefix flannel accepts without an explicit length. */
  maxNetworkPrefix: number;
  /** Longest explicit subnet length. */
  maxSubnetLen: number;
}

const V4_RULES: FamilyRules = {
  family: 4,
  networkField: 'Network',
  lenField: 'SubnetLen',
  minField: 'SubnetMin',
  maxField: 'SubnetMax',
  defaultLen: 24,
  defaultUpTo: 22,
  maxNetworkPrefix: 28,
  maxSubnetLen: 30,
};
const V6_RULES: FamilyRules = {
  family: 6,
  networkField: 'IPv6Network',
  lenField: 'IPv6SubnetLen',
  minField: 'IPv6SubnetMin',
  maxField: 'IPv6SubnetMax',
  defaultLen: 64,
  defaultUpTo: 62,
  maxNetworkPrefix: 124,
  maxSubnetLen: 126,
};

interface FamilyResult {
  network: IPNet;
  subnetLen: number;
  subnetMin: IPNet;
  subnetMax: IPNet;
}

function checkFamily(fields: Map<KnownField, unknown>, r: FamilyRules): FamilyResult {
  const network = readNetwork(fields, r.networkField, r.family);
  // flannel treats 0.0.0.0/0 (Go's zero value) as "not set".
  const example = r.family === 4 ? '198.19.0.0/16' : '2001:db8:1::/48';
  if (!network) fail(`${r.networkField} is missing: please define a correct ${r.networkField} parameter, e.g. "${example}"`);
  if (network.value === 0n && network.prefixLen === 0) {
    fail(`${r.networkField} ${show(fields.get(r.networkField))} is invalid: please define a correct ${r.networkField} parameter, e.g. "${example}"`);
  }
  const net = formatCIDR(network);
  let subnetLen = readUint(fields, r.lenField);
  if (subnetLen > 0) {
    if (subnetLen > r.maxSubnetLen) fail(`${r.lenField} ${subnetLen} is invalid: must be at most ${r.maxSubnetLen}`);
    if (subnetLen < network.prefixLen + 2) {
      fail(`${r.lenField} ${subnetLen} is invalid: must be at least ${network.prefixLen + 2} so ${r.networkField} ${net} holds at least four subnets`);
    }
  } else if (network.prefixLen > r.maxNetworkPrefix) {
    fail(`${r.networkField} ${net} is invalid: network is too small, the prefix must be at most /${r.maxNetworkPrefix}`);
  } else {
    subnetLen = network.prefixLen <= r.defaultUpTo ? r.defaultLen : network.prefixLen + 2;
  }

  const size = blockSize(r.family, subnetLen);
  const networkEnd = network.value + blockSize(r.family, network.prefixLen);
  const resolve = (field: KnownField, dflt: bigint): IPNet => {
    const given = readAddr(fields, field, r.family);
    // The zero address is Go's zero value: flannel uses the default for it.
    if (!given || given.value === 0n) return { family: r.family, value: dflt, prefixLen: subnetLen };
    const text = formatIP(given);
    if (!containsIP(network, given)) fail(`${field} ${text} is invalid: must lie inside ${r.networkField} ${net}`);
    if ((given.value & prefixMask(r.family, subnetLen)) !== given.value) {
      fail(`${field} ${text} is invalid: must be on a ${r.lenField} (/${subnetLen}) boundary`);
    }
    return { family: r.family, value: given.value, prefixLen: subnetLen };
  };
  const subnetMin = resolve(r.minField, network.value + size);
  const subnetMax = resolve(r.maxField, networkEnd - size);
  // flannel would accept this and then fail with "out of subnets"; saying why up front is kinder.
  if (subnetMin.value > subnetMax.value) {
    fail(`${r.minField} ${formatIP({ family: r.family, value: subnetMin.value })} is invalid: must not be after ${r.maxField} ${formatIP({ family: r.family, value: subnetMax.value })}`);
  }
  return { network, subnetLen, subnetMin, subnetMax };
}

/** Parses and validates net-conf.json text; throws an Error with a one-line, actionable message. */
export function parseNetworkConfig(json: string): NetworkConfig {
  let parsed: unknown;
  try {
    parsed = parseGoJSON(json);
  } catch (e) {
    fail(`invalid JSON: ${(e as Error).message}`);
  }
  if (!isRecord(parsed)) fail(`must be a JSON object like {"Network":"198.19.0.0/16"}, got ${show(parsed)}`);
  const fields = pickFields(parsed);
  const enableIPv4 = readBool(fields, 'EnableIPv4', true);
  const enableIPv6 = readBool(fields, 'EnableIPv6', false);
  const enableNFTables = readBool(fields, 'EnableNFTables', false);
  if (!enableIPv4 && !enableIPv6) fail('EnableIPv4 and EnableIPv6 are both false: enable at least one');
  const backend = readBackend(fields);
  const v4 = enableIPv4 ? checkFamily(fields, V4_RULES) : undefined;
  const v6 = enableIPv6 ? checkFamily(fields, V6_RULES) : undefined;
  return {
    enableIPv4,
    enableIPv6,
    enableNFTables,
    network: v4?.network,
    subnetLen: v4?.subnetLen ?? 0,
    subnetMin: v4?.subnetMin,
    subnetMax: v4?.subnetMax,
    ipv6Network: v6?.network,
    ipv6SubnetLen: v6?.subnetLen ?? 0,
    ipv6SubnetMin: v6?.subnetMin,
    ipv6SubnetMax: v6?.subnetMax,
    backend,
    source: json,
  };
}

/** flannel's allocation log line: "Picking subnet in range 198.19.1.0 ... 198.19.255.0". */
export function formatPickRange(config: NetworkConfig, family: Family = 4): string {
  const min = family === 4 ? config.subnetMin : config.ipv6SubnetMin;
  const max = family === 4 ? config.subnetMax : config.ipv6SubnetMax;
  if (!min || !max) return family === 4 ? 'IPv4 is disabled' : 'IPv6 is disabled';
  const what = family === 4 ? 'subnet' : 'ipv6 subnet';
  return `Picking ${what} in range ${formatIP({ family, value: min.value })} ... ${formatIP({ family, value: max.value })}`;
}
