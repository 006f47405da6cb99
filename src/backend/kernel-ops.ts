// What the route-based backends (vxlan, host-gw) need from the kernel: a subset of the Netlink API,
// so the real thing is the Netlink object itself and unit tests pass an in-memory kernel.
import { writeFileSync } from 'node:fs';
import type { Netlink } from '../netlink/index.js';
import { log } from '../log.js';

export type RouteOps = Pick<Netlink, 'listRoutes' | 'addRoute' | 'replaceRoute' | 'delRoute' | 'routeGet'>;

export type VxlanOps = RouteOps &
  Pick<
    Netlink,
    | 'findLink'
    | 'addVxlanLink'
    | 'deleteLink'
    | 'setLinkUp'
    | 'setLinkMtu'
    | 'listAddrs'
    | 'addAddr'
    | 'delAddr'
    | 'listNeighs'
    | 'replaceNeigh'
    | 'delNeigh'
    | 'listFdb'
    | 'replaceFdb'
    | 'delFdb'
  > & {
    /** flannel sets net.ipv6.conf.<dev>.accept_ra=0 on its vxlan devices; failures are ignored as flannel does. */
    disableAcceptRA(device: string): void;
  };

/** The kernel adapter: netlink for everything, /proc/sys for the one sysctl (no `ip`/`sysctl` shell-out). */
export function netlinkVxlanOps(link: Netlink): VxlanOps {
  return {
    listRoutes: (f, t) => link.listRoutes(f, t),
    addRoute: (r) => link.addRoute(r),
    replaceRoute: (r) => link.replaceRoute(r),
    delRoute: (r) => link.delRoute(r),
    routeGet: (d) => link.routeGet(d),
    findLink: (n) => link.findLink(n),
    addVxlanLink: (s) => link.addVxlanLink(s),
    deleteLink: (i) => link.deleteLink(i),
    setLinkUp: (i) => link.setLinkUp(i),
    setLinkMtu: (i, m) => link.setLinkMtu(i, m),
    listAddrs: (f, i) => link.listAddrs(f, i),
    addAddr: (i, a, p, o) => link.addAddr(i, a, p, o),
    delAddr: (i, a, p) => link.delAddr(i, a, p),
    listNeighs: (f, i) => link.listNeighs(f, i),
    replaceNeigh: (n) => link.replaceNeigh(n),
    delNeigh: (i, d) => link.delNeigh(i, d),
    listFdb: (i) => link.listFdb(i),
    replaceFdb: (f) => link.replaceFdb(f),
    delFdb: (f) => link.delFdb(f),
    disableAcceptRA: (device) => {
      try {
        writeFileSync(`/proc/sys/net/ipv6/conf/${device}/accept_ra`, '0');
      } catch {
        // IPv6 disabled on the host or /proc/sys read-only: flannel ignores this too.
      }
    },
  };
}

/**
 * Fault injection for tests, like etcd's gofail: FLANNELTS_FAILPOINTS="vxlan-link-create=EOPNOTSUPP"
 * makes creating a vxlan device fail as a kernel without the vxlan module does, so the userspace
 * fallback is exercised on a machine that has VXLAN. Unset in production: the ops are returned as is.
 */
export function withFailpoints(ops: VxlanOps, env: NodeJS.ProcessEnv = process.env): VxlanOps {
  const points = new Map(
    (env.FLANNELTS_FAILPOINTS ?? '')
      .split(',')
      .map((p) => p.trim().split('='))
      .filter((kv): kv is [string, string] => kv.length === 2 && kv[0] !== '' && kv[1] !== ''),
  );
  const code = points.get('vxlan-link-create');
  if (!code) return ops;
  log.warning(`FLANNELTS_FAILPOINTS: vxlan-link-create=${code} is active (test fault injection): kernel vxlan devices cannot be created`);
  const refuse: VxlanOps['addVxlanLink'] = (spec) => {
    throw Object.assign(new Error(`create vxlan link ${spec.name}: ${code} (failpoint vxlan-link-create)`), { code });
  };
  // A proxy, not a copy: the operations may be methods of a class instance (the in-memory kernel).
  return new Proxy(ops, {
    get(target, prop) {
      if (prop === 'addVxlanLink') return refuse;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
