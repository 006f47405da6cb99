// /run/flannel/subnet.env, byte for byte as flannel's WriteSubnetFile writes it, written atomically
// (temp file `.<name>` in the same directory, then rename) so the CNI plugin never reads half a file.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { NetworkConfig } from '../config/types.js';
import { formatIP } from '../ip/addr.js';
import { firstUsable, formatCIDR, networkOf, parseIPWithPrefix } from '../ip/cidr.js';
import type { IPNet } from '../ip/types.js';
import { log } from '../log.js';

export interface SubnetEnvInput {
  config: NetworkConfig;
  subnet?: IPNet;
  ipv6Subnet?: IPNet;
  mtu: number;
  ipMasq: boolean;
}

/** FLANNEL_SUBNET is the lease's first usable address with the lease prefix, e.g. 198.19.90.1/24. */
function firstUsableCIDR(n: IPNet): string {
  return `${formatIP(firstUsable(n))}/${n.prefixLen}`;
}

/** The file's text: only the lines that apply, in flannel's order. */
export function formatSubnetEnv(input: SubnetEnvInput): string {
  const { config } = input;
  let text = '';
  if (config.enableIPv4) {
    if (!config.network || !input.subnet) throw new Error('subnet.env: IPv4 is enabled but the network or lease subnet is missing');
    text += `FLANNEL_NETWORK=${formatCIDR(config.network)}\nFLANNEL_SUBNET=${firstUsableCIDR(input.subnet)}\n`;
  }
  if (config.enableIPv6) {
    if (!config.ipv6Network || !input.ipv6Subnet) throw new Error('subnet.env: IPv6 is enabled but the IPv6 network or lease subnet is missing');
    text += `FLANNEL_IPV6_NETWORK=${formatCIDR(config.ipv6Network)}\nFLANNEL_IPV6_SUBNET=${firstUsableCIDR(input.ipv6Subnet)}\n`;
  }
  text += `FLANNEL_MTU=${input.mtu}\nFLANNEL_IPMASQ=${input.ipMasq ? 'true' : 'false'}\n`;
  return text;
}

/** Writes `path` atomically, creating its directory (0755) like flannel; file mode 0644. */
export function writeFileAtomic(path: string, text: string): void {
  const dir = dirname(path);
  // Only a missing directory is made: mkdir on an existing non-directory would answer EEXIST, where
  // the write below says what is wrong (ENOTDIR).
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `.${basename(path)}`);
  try {
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function writeSubnetEnv(path: string, input: SubnetEnvInput): void {
  writeFileAtomic(path, formatSubnetEnv(input));
}

export interface PreviousSubnets {
  subnet?: IPNet;
  ipv6Subnet?: IPNet;
}

/** Parses FLANNEL_SUBNET / FLANNEL_IPV6_SUBNET from subnet.env text; garbled values are left out. */
export function parsePreviousSubnets(text: string): PreviousSubnets & { problems: string[] } {
  const out: PreviousSubnets & { problems: string[] } = { problems: [] };
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key !== 'FLANNEL_SUBNET' && key !== 'FLANNEL_IPV6_SUBNET') continue;
    const want = key === 'FLANNEL_SUBNET' ? 4 : 6;
    const p = parseIPWithPrefix(value);
    if (!p || p.ip.family !== want) {
      out.problems.push(`${key}=${value} is not an IPv${want} address/prefix`);
      continue;
    }
    // The file holds the first usable address; the lease is its network.
    const net = networkOf(p.ip, p.prefixLen);
    if (key === 'FLANNEL_SUBNET') out.subnet = net;
    else out.ipv6Subnet = net;
  }
  return out;
}

/** Reads the previous lease subnets; a missing or garbled file gives undefined fields (logged). */
export function readPreviousSubnets(path: string): PreviousSubnets {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') log.v(1).info(`No previous subnet file ${path}; a new subnet will be picked`);
    else log.warning(`Could not read previous subnet file ${path}: ${(e as Error).message}; a new subnet will be picked`);
    return {};
  }
  const parsed = parsePreviousSubnets(text);
  for (const p of parsed.problems) log.warning(`Ignoring previous subnet in ${path}: ${p}`);
  const result: PreviousSubnets = {};
  if (parsed.subnet) result.subnet = parsed.subnet;
  if (parsed.ipv6Subnet) result.ipv6Subnet = parsed.ipv6Subnet;
  return result;
}
