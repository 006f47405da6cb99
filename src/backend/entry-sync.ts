// Applies peer entries to the kernel in flannel's order (neighbour, FDB, then the route, so the
// kernel never has to resolve the gateway itself) and applies reconcile plans. One failed entry is
// logged and counted, never fatal: the next reconcile pass retries it.
import { containsNet, formatIP, type IPAddr, type IPNet } from '../ip/index.js';
import { isExists, isNotFound, nl } from '../netlink/index.js';
import type { RouteSpec } from '../netlink/index.js';
import { log } from '../log.js';
import type { VxlanOps, RouteOps } from './kernel-ops.js';
import { describeRoute, type FdbPlan, type NeighPlan, type PeerEntries, type RouteEntry, type RoutePlan } from './peer-entries.js';

export type DevName = (index: number) => string;

export interface SyncCounters {
  /** Entries added, replaced or removed by reconcile passes. */
  repairs: number;
  /** Kernel refusals (each logged). */
  errors: number;
}

export function routeSpec(r: RouteEntry): RouteSpec {
  return { dst: r.dst, gateway: r.gateway, oif: r.oif, onlink: r.onlink, scope: nl.RT_SCOPE_UNIVERSE };
}

type NeighFdbOps = Pick<VxlanOps, 'replaceNeigh' | 'delNeigh' | 'replaceFdb' | 'delFdb'>;
/** host-gw passes route operations only; its entries never hold neighbours or FDB entries. */
export type EntryOps = RouteOps & Partial<NeighFdbOps>;

function neighFdb(ops: EntryOps): NeighFdbOps {
  const { replaceNeigh, delNeigh, replaceFdb, delFdb } = ops;
  if (!replaceNeigh || !delNeigh || !replaceFdb || !delFdb) throw new Error('internal: neighbour/FDB entries given to a backend without neighbour/FDB operations');
  // Bound: the operations may be methods of a class (the in-memory kernel) rather than closures.
  return { replaceNeigh: replaceNeigh.bind(ops), delNeigh: delNeigh.bind(ops), replaceFdb: replaceFdb.bind(ops), delFdb: delFdb.bind(ops) };
}

/** Adds one peer's entries; stops at the first failure, as flannel does, and reports it. */
export function installPeer(ops: EntryOps, e: PeerEntries, counters: SyncCounters): boolean {
  try {
    if (e.neighs.length + e.fdbs.length > 0) {
      const l2 = neighFdb(ops);
      for (const n of e.neighs) l2.replaceNeigh({ index: n.index, dst: n.dst, lladdr: n.mac, state: nl.NUD_PERMANENT });
      for (const f of e.fdbs) l2.replaceFdb({ index: f.index, lladdr: f.mac, dst: f.dst });
    }
    for (const r of e.routes) ops.replaceRoute(routeSpec(r));
    return true;
  } catch (err) {
    counters.errors++;
    log.error(`adding peer entries failed (the next reconcile pass retries): ${(err as Error).message}`);
    return false;
  }
}

/** Removes one peer's entries; keeps going past failures, and "already gone" is success. */
export function removePeer(ops: EntryOps, e: PeerEntries, counters: SyncCounters): void {
  const attempt = (f: () => void): void => {
    try {
      f();
    } catch (err) {
      if (isNotFound(err)) return;
      counters.errors++;
      log.error(`removing peer entry failed: ${(err as Error).message}`);
    }
  };
  for (const n of e.neighs) attempt(() => neighFdb(ops).delNeigh(n.index, n.dst));
  for (const f of e.fdbs) attempt(() => neighFdb(ops).delFdb({ index: f.index, lladdr: f.mac, dst: f.dst }));
  for (const r of e.routes) attempt(() => ops.delRoute(routeSpec(r)));
}

export interface Plans {
  neigh?: NeighPlan;
  fdb?: FdbPlan;
  route: RoutePlan;
}

/** Applies reconcile plans; returns how many entries it changed. */
export function applyPlans(ops: EntryOps, p: Plans, devName: DevName, counters: SyncCounters): number {
  let changed = 0;
  const attempt = (what: string, f: () => void, goneIsFine = false): void => {
    try {
      f();
      changed++;
      log.info(what);
    } catch (err) {
      if ((goneIsFine && isNotFound(err)) || (!goneIsFine && isExists(err))) return;
      counters.errors++;
      log.error(`${what} failed: ${(err as Error).message}`);
    }
  };
  for (const n of p.neigh?.set ?? []) {
    attempt(`Neighbour recovered ${formatIP(n.dst)} lladdr ${n.mac} dev ${devName(n.index)}`, () =>
      neighFdb(ops).replaceNeigh({ index: n.index, dst: n.dst, lladdr: n.mac, state: nl.NUD_PERMANENT }),
    );
  }
  for (const f of p.fdb?.set ?? []) {
    attempt(`FDB entry recovered ${f.mac} dst ${formatIP(f.dst)} dev ${devName(f.index)}`, () => neighFdb(ops).replaceFdb({ index: f.index, lladdr: f.mac, dst: f.dst }));
  }
  for (const r of p.route.add) {
    attempt(`Route recovered ${describeRoute(r, devName, r.oif)}`, () => ops.addRoute(routeSpec(r)));
  }
  for (const { want, have } of p.route.replace) {
    log.warning(`Replacing existing route to ${describeRoute(have, devName, have.oif)} with ${describeRoute(want, devName, want.oif)}`);
    attempt(`Route replaced ${describeRoute(want, devName, want.oif)}`, () => ops.replaceRoute(routeSpec(want)));
  }
  for (const n of p.neigh?.del ?? []) {
    if (!n.dst) continue;
    const dst: IPAddr = n.dst;
    attempt(`Stale neighbour removed ${formatIP(dst)} lladdr ${n.lladdr ?? '?'} dev ${devName(n.index)}`, () => neighFdb(ops).delNeigh(n.index, dst), true);
  }
  for (const f of p.fdb?.del ?? []) {
    if (!f.dst || !f.lladdr) continue;
    const spec = { index: f.index, lladdr: f.lladdr, dst: f.dst };
    attempt(`Stale FDB entry removed ${spec.lladdr} dst ${formatIP(spec.dst)} dev ${devName(f.index)}`, () => neighFdb(ops).delFdb(spec), true);
  }
  for (const r of p.route.del) {
    const spec: RouteSpec = { dst: r.dst, gateway: r.gateway, oif: r.oif, table: r.table };
    attempt(`Stale route removed ${describeRoute(r, devName, r.oif)}`, () => ops.delRoute(spec), true);
  }
  return changed;
}

/**
 * Routes a backend owns: inside the overlay network, on one of `oifs`, not inside our own subnet (the
 * device address's own /128 route lives there) and not made by the kernel for an address.
 */
export function ownedRoute(network: IPNet | undefined, own: IPNet | undefined, oifs: ReadonlySet<number>, needGateway: (oif: number) => boolean) {
  return (r: { dst: IPNet; oif?: number; gateway?: IPAddr; protocol?: number }): boolean => {
    if (!network || r.dst.family !== network.family || r.oif === undefined || !oifs.has(r.oif)) return false;
    if (!containsNet(network, r.dst)) return false;
    if (own && own.family === r.dst.family && containsNet(own, r.dst)) return false;
    if (r.protocol === nl.RTPROT_KERNEL) return false;
    return !needGateway(r.oif) || r.gateway !== undefined;
  };
}
