// Lease acquisition shared by every store (flannel's LocalManager.tryAcquireLease): decide, purely,
// which subnet to ask for; then a small loop drives a store's create-if-absent until it wins a race.
import type { NetworkConfig } from '../config/types.js';
import { formatIP } from '../ip/addr.js';
import { formatCIDR, mathRandomInt, netEqual, overlaps, pickFreeSubnet } from '../ip/cidr.js';
import type { RandomInt } from '../ip/cidr.js';
import type { IPAddr, IPNet } from '../ip/types.js';
import { log } from '../log.js';
import { describeSubnets } from './lease.js';
import type { AcquireOptions, Lease, LeaseAttrs } from './types.js';

export type AcquirePlan =
  /** Re-attach an existing lease (write our attrs with a fresh TTL). */
  | { kind: 'reattach'; lease: Lease; reason: 'previous subnet' | 'same public IP' }
  /** Create a lease for a free subnet; may lose a race to another node. */
  | { kind: 'create'; subnet?: IPNet; ipv6Subnet?: IPNet; reason: 'previous subnet' | 'free subnet' };

export interface PlanInput {
  config: NetworkConfig;
  /** Live (unexpired) leases. */
  leases: readonly Lease[];
  attrs: LeaseAttrs;
  previousSubnet?: IPNet;
  previousIPv6Subnet?: IPNet;
  random?: RandomInt;
}

export interface PlanResult {
  plan: AcquirePlan;
  /** Leases with our public IP that no longer fit the config; flannel deletes them. */
  incompatibleOwn: Lease[];
}

/** A full range; the message says which range and what to do. */
export class NoSubnetsLeftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoSubnetsLeftError';
  }
}

function sameIP(a: IPAddr | undefined, b: IPAddr | undefined): boolean {
  return a !== undefined && b !== undefined && a.family === b.family && a.value === b.value;
}

/** A lease is ours when it advertises our public address (IPv4 when on, else IPv6). */
export function isOwnLease(config: NetworkConfig, lease: Lease, attrs: LeaseAttrs): boolean {
  return config.enableIPv4 ? sameIP(lease.attrs.publicIP, attrs.publicIP) : sameIP(lease.attrs.publicIPv6, attrs.publicIPv6);
}

function inRange(sn: IPNet | undefined, min: IPNet | undefined, max: IPNet | undefined, len: number): boolean {
  return sn !== undefined && min !== undefined && max !== undefined && sn.family === min.family &&
    sn.prefixLen === len && sn.value >= min.value && sn.value <= max.value;
}

/** flannel's isSubnetConfigCompat + isIPv6SubnetConfigCompat: inside [Min, Max], right length, right families. */
export function isCompatible(config: NetworkConfig, subnet: IPNet | undefined, ipv6Subnet: IPNet | undefined): boolean {
  const v4ok = config.enableIPv4 ? inRange(subnet, config.subnetMin, config.subnetMax, config.subnetLen) : subnet === undefined;
  const v6ok = config.enableIPv6
    ? inRange(ipv6Subnet, config.ipv6SubnetMin, config.ipv6SubnetMax, config.ipv6SubnetLen)
    : ipv6Subnet === undefined;
  return v4ok && v6ok;
}

/** Leases identify by their IPv4 subnet when IPv4 is on, else by the IPv6 one (flannel's sameSubnet). */
function sameLeaseSubnet(config: NetworkConfig, lease: Lease, subnet: IPNet | undefined, ipv6Subnet: IPNet | undefined): boolean {
  if (config.enableIPv4) return lease.subnet !== undefined && subnet !== undefined && netEqual(lease.subnet, subnet);
  return lease.ipv6Subnet !== undefined && ipv6Subnet !== undefined && netEqual(lease.ipv6Subnet, ipv6Subnet);
}

function pickRandom(config: NetworkConfig, leases: readonly Lease[], random: RandomInt): { subnet?: IPNet; ipv6Subnet?: IPNet } {
  const out: { subnet?: IPNet; ipv6Subnet?: IPNet } = {};
  const families: Array<4 | 6> = [];
  if (config.enableIPv4) families.push(4);
  if (config.enableIPv6) families.push(6);
  for (const family of families) {
    const min = family === 4 ? config.subnetMin : config.ipv6SubnetMin;
    const max = family === 4 ? config.subnetMax : config.ipv6SubnetMax;
    const network = family === 4 ? config.network : config.ipv6Network;
    const len = family === 4 ? config.subnetLen : config.ipv6SubnetLen;
    if (!min || !max || !network) throw new Error(`IPv${family} is enabled but its network config is incomplete`);
    log.info(`Picking ${family === 4 ? 'subnet' : 'ipv6 subnet'} in range ${formatIP(min)} ... ${formatIP(max)}`);
    const taken = leases.flatMap((l) => [l.subnet, l.ipv6Subnet]).filter((n): n is IPNet => n !== undefined);
    const picked = pickFreeSubnet(min, max, len, taken, random);
    if (!picked) {
      throw new NoSubnetsLeftError(
        `no subnets left in ${formatCIDR(network)} between ${formatIP(min)} and ${formatIP(max)} ` +
          `(/${len}, ${leases.length} leases held): widen the network or SubnetMin/SubnetMax, or remove stale leases`,
      );
    }
    if (family === 4) out.subnet = picked;
    else out.ipv6Subnet = picked;
  }
  return out;
}

/**
 * Decides what to ask the store for, in flannel's order (pkg/subnet/etcd/local_manager.go
 * tryAcquireLease, the same in v0.20.2 and main): an existing lease with our public IP (re-attached;
 * the one matching subnet.env if several); else the previous subnet from subnet.env when it is free;
 * else a random free subnet between SubnetMin and SubnetMax. Throws NoSubnetsLeftError when full.
 *
 * flannel-compat §4 lists the previous subnet first; flannel checks the public IP first, and doing
 * otherwise would leave our old lease alive next to the new one (two leases routed to one node).
 */
export function planAcquisition(input: PlanInput): PlanResult {
  const { config, leases, attrs } = input;
  const random = input.random ?? mathRandomInt;
  const own = leases.filter((l) => isOwnLease(config, l, attrs));
  const incompatibleOwn = own.filter((l) => !isCompatible(config, l.subnet, l.ipv6Subnet));
  const others = leases.filter((l) => !incompatibleOwn.includes(l));

  const prev4 = config.enableIPv4 ? input.previousSubnet : undefined;
  const prev6 = config.enableIPv6 ? input.previousIPv6Subnet : undefined;
  const compatibleOwn = own.filter((l) => !incompatibleOwn.includes(l));
  const mine = compatibleOwn.find((l) => sameLeaseSubnet(config, l, prev4, prev6)) ?? compatibleOwn[0];
  if (mine) {
    const reason = sameLeaseSubnet(config, mine, prev4, prev6) ? 'previous subnet' : 'same public IP';
    return { plan: { kind: 'reattach', lease: mine, reason }, incompatibleOwn };
  }

  if (prev4 !== undefined || prev6 !== undefined) {
    if (isCompatible(config, prev4, prev6)) {
      const taken = others.some((l) =>
        (prev4 && l.subnet && overlaps(prev4, l.subnet)) || (prev6 && l.ipv6Subnet && overlaps(prev6, l.ipv6Subnet)));
      if (!taken) return { plan: { kind: 'create', subnet: prev4, ipv6Subnet: prev6, reason: 'previous subnet' }, incompatibleOwn };
      log.info(`Previously leased subnet (${describeSubnets(prev4, prev6)}) is taken by another node, not reusing`);
    } else {
      log.error(`Found previously leased subnet (${describeSubnets(prev4, prev6)}) that is not compatible with the network config, ignoring`);
    }
  }

  const picked = pickRandom(config, others, random);
  return { plan: { kind: 'create', ...picked, reason: 'free subnet' }, incompatibleOwn };
}

/** What a store must provide so the shared acquisition loop can drive it. */
export interface LeaseStoreOps {
  /** Live leases. */
  list(): Promise<Lease[]>;
  /** Creates the lease only if no live lease holds the key; undefined when another node won the race. */
  createIfAbsent(subnet: IPNet | undefined, ipv6Subnet: IPNet | undefined, attrs: LeaseAttrs): Promise<Lease | undefined>;
  /** Overwrites an existing lease with our attrs and a fresh TTL. */
  reattach(lease: Lease, attrs: LeaseAttrs): Promise<Lease>;
  remove(lease: Lease): Promise<void>;
}

/** flannel's raceRetries. */
export const ACQUIRE_RETRIES = 10;

/** Runs planAcquisition against a store until a create wins or a lease is re-attached. */
export async function acquireFromStore(
  store: LeaseStoreOps,
  config: NetworkConfig,
  attrs: LeaseAttrs,
  opts: AcquireOptions = {},
  random: RandomInt = mathRandomInt,
): Promise<Lease> {
  const publicText = attrs.publicIP ? formatIP(attrs.publicIP) : attrs.publicIPv6 ? formatIP(attrs.publicIPv6) : 'no public IP';
  for (let attempt = 0; attempt < ACQUIRE_RETRIES; attempt++) {
    opts.signal?.throwIfAborted();
    const leases = await store.list();
    const { plan, incompatibleOwn } = planAcquisition({
      config,
      leases,
      attrs,
      previousSubnet: opts.previousSubnet,
      previousIPv6Subnet: opts.previousIPv6Subnet,
      random,
    });
    for (const stale of incompatibleOwn) {
      log.info(`Found lease (${describeSubnets(stale.subnet, stale.ipv6Subnet)}) for current IP (${publicText}) but not compatible with current config, deleting`);
      await store.remove(stale);
    }
    if (plan.kind === 'reattach') {
      log.info(`Found lease (${describeSubnets(plan.lease.subnet, plan.lease.ipv6Subnet)}) for current IP (${publicText}) by ${plan.reason}, reusing`);
      return await store.reattach(plan.lease, attrs);
    }
    if (plan.reason === 'previous subnet') log.info(`Found previously leased subnet (${describeSubnets(plan.subnet, plan.ipv6Subnet)}), reusing`);
    const created = await store.createIfAbsent(plan.subnet, plan.ipv6Subnet, attrs);
    if (created) {
      log.info(`Allocated lease (${describeSubnets(plan.subnet, plan.ipv6Subnet)}) to current node (${publicText})`);
      return created;
    }
    log.v(1).info(`Lost the race for subnet (${describeSubnets(plan.subnet, plan.ipv6Subnet)}), picking again`);
  }
  throw new Error(`max retries (${ACQUIRE_RETRIES}) reached trying to acquire a subnet: too many nodes racing for the same subnets`);
}
