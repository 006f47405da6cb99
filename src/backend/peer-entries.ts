// The kernel entries a route-based backend keeps per remote lease (routes; for vxlan also a
// neighbour and an FDB entry), and the pure diff between what should exist and what the kernel has.
// Reconcile = list the kernel state, plan with these functions, apply the plan.
import { containsIP, formatCIDR, formatIP, ipEqual, netEqual, type IPAddr, type IPNet } from '../ip/index.js';
import { nl, type Neigh, type Route } from '../netlink/index.js';

export interface RouteEntry {
  dst: IPNet;
  gateway: IPAddr;
  oif: number;
  onlink: boolean;
}

/** `<addr> lladdr <mac> PERMANENT` on the vxlan device. */
export interface NeighEntry {
  index: number;
  dst: IPAddr;
  mac: string;
}

/** `<mac> dst <remote vtep> self permanent` on the vxlan device. */
export interface FdbEntry {
  index: number;
  mac: string;
  dst: IPAddr;
}

export interface PeerEntries {
  routes: RouteEntry[];
  neighs: NeighEntry[];
  fdbs: FdbEntry[];
}

/** A comparable key of entries (addresses hold bigints, which JSON.stringify cannot write as is). */
export const entryKey = (x: unknown): string => JSON.stringify(x, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

export const emptyEntries = (): PeerEntries => ({ routes: [], neighs: [], fdbs: [] });

export function describeRoute(r: { dst: IPNet; gateway?: IPAddr; onlink?: boolean }, devName?: (i: number) => string, oif?: number): string {
  return `${formatCIDR(r.dst)}${r.gateway ? ` via ${formatIP(r.gateway)}` : ''}${oif !== undefined && devName ? ` dev ${devName(oif)}` : ''}${r.onlink ? ' onlink' : ''}`;
}

export function routeMatches(want: RouteEntry, have: Route): boolean {
  return (
    netEqual(want.dst, have.dst) &&
    have.gateway !== undefined &&
    ipEqual(want.gateway, have.gateway) &&
    have.oif === want.oif &&
    // The kernel reports RTNH_F_ONLINK only on routes that asked for it; a direct route without it is fine.
    (!want.onlink || have.onlink)
  );
}

export interface RoutePlan {
  add: RouteEntry[];
  /** Same destination, other gateway or device: replaced (and logged, as flannel's routeAdd does). */
  replace: Array<{ want: RouteEntry; have: Route }>;
  del: Route[];
}

/**
 * Routes: each wanted destination must exist exactly as wanted; routes that `owned` claims (ours by
 * device/network) but no wanted entry explains are stale and go.
 */
export function planRoutes(want: RouteEntry[], have: Route[], owned: (r: Route) => boolean): RoutePlan {
  const plan: RoutePlan = { add: [], replace: [], del: [] };
  const unicast = have.filter((r) => r.type === nl.RTN_UNICAST);
  for (const w of want) {
    const same = unicast.filter((r) => netEqual(r.dst, w.dst));
    if (same.some((r) => routeMatches(w, r))) continue;
    const first = same[0];
    if (first) plan.replace.push({ want: w, have: first });
    else plan.add.push(w);
  }
  for (const r of unicast) {
    if (!owned(r)) continue;
    if (want.some((w) => netEqual(w.dst, r.dst))) continue;
    plan.del.push(r);
  }
  return plan;
}

export interface NeighPlan {
  set: NeighEntry[];
  del: Neigh[];
}

/** Neighbours on one device: wanted ones PERMANENT with the right MAC; other PERMANENT ones inside the overlay are stale. */
export function planNeighs(want: NeighEntry[], have: Neigh[], network: IPNet | undefined): NeighPlan {
  const plan: NeighPlan = { set: [], del: [] };
  for (const w of want) {
    const h = have.find((n) => n.index === w.index && n.dst !== undefined && ipEqual(n.dst, w.dst));
    if (h && h.lladdr === w.mac && (h.state & nl.NUD_PERMANENT) !== 0) continue;
    plan.set.push(w);
  }
  for (const h of have) {
    if (!h.dst || (h.state & nl.NUD_PERMANENT) === 0) continue;
    if (!network || h.dst.family !== network.family || !containsIP(network, h.dst)) continue;
    if (want.some((w) => w.index === h.index && ipEqual(w.dst, h.dst!))) continue;
    plan.del.push(h);
  }
  return plan;
}

export interface FdbPlan {
  set: FdbEntry[];
  del: Neigh[];
}

/** FDB of one vxlan device: every wanted MAC -> remote; remote entries (with a dst) nobody wants go. */
export function planFdb(want: FdbEntry[], have: Neigh[]): FdbPlan {
  const plan: FdbPlan = { set: [], del: [] };
  for (const w of want) {
    if (have.some((h) => h.lladdr === w.mac && h.dst !== undefined && ipEqual(h.dst, w.dst))) continue;
    plan.set.push(w);
  }
  for (const h of have) {
    if (!h.dst || !h.lladdr) continue;
    if (want.some((w) => w.mac === h.lladdr && ipEqual(w.dst, h.dst!))) continue;
    plan.del.push(h);
  }
  return plan;
}
