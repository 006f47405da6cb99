// The real platform behind the daemon: netlink for interfaces, addresses and routes, the native engine
// for packets. Everything above this file is tested with in-memory doubles of these adapters.
import { BackendRegistry } from './backend/registry.js';
import type { BlackholeOps } from './blackhole.js';
import type { DataPlaneSettings } from './config/dataplane.js';
import { udpBackendFactory } from './backend/udp.js';
import type { DataPlaneOptions, LinkOps, TunDataPlane } from './backend/tun/data-plane.js';
import type { VxlanOps } from './backend/kernel-ops.js';
import type { SystemView } from './iface.js';
import { netEqual, type IPAddr, type IPNet } from './ip/index.js';
import { describeOffloads, Engine, nativeDropReasons, type EngineOptions } from './native/engine.js';
import { isExists, Netlink, nl, watchLinks } from './netlink/index.js';

export interface Platform {
  readonly backends: BackendRegistry;
  systemView(): SystemView;
  /** Main-table routes as -ip-blackhole-route needs them. */
  routeOps(): BlackholeOps;
  close(): void;
}

/** Interfaces, addresses and routes as the interface selection sees them. */
export function netlinkSystemView(link: Netlink): SystemView {
  return {
    links: () => link.listLinks().map((l) => ({ index: l.index, name: l.name, mtu: l.mtu, up: l.up })),
    addrs: () => link.listAddrs().map((a) => ({ index: a.index, addr: a.addr, prefixLen: a.prefixLen, flags: a.flags })),
    defaultRouteIndex: (family) => link.defaultRouteInterface(family),
    routeGetIndex: (dst: IPAddr) => {
      try {
        return link.routeGet(dst).oif;
      } catch {
        return undefined;
      }
    },
  };
}

/** Idempotent link operations: an address or route that already exists is not an error. */
export function netlinkLinkOps(link: Netlink): LinkOps {
  return {
    setMtu: (index, mtu) => link.setLinkMtu(index, mtu),
    setUp: (index) => link.setLinkUp(index),
    ensureAddr: (index, addr, prefixLen) => {
      const present = link
        .listAddrs(addr.family, index)
        .some((a) => a.addr.value === addr.value && a.prefixLen === prefixLen);
      if (present) return false;
      try {
        link.addAddr(index, addr, prefixLen);
        return true;
      } catch (e) {
        if (isExists(e)) return false;
        throw e;
      }
    },
    ensureRoute: (index, dst: IPNet) => {
      const present = link.listRoutes(dst.family).some((r) => r.oif === index && netEqual(r.dst, dst));
      if (present) return false;
      try {
        link.addRoute({ dst, oif: index, scope: nl.RT_SCOPE_UNIVERSE });
        return true;
      } catch (e) {
        if (isExists(e)) return false;
        throw e;
      }
    },
  };
}

/** The engine settings of flanneld's flags; absent ones take the engine's defaults. */
export type PlatformOptions = Partial<DataPlaneSettings>;

/** The engine settings of flanneld's flags as EngineOptions (the userspace WireGuard device's engine). */
function engineTuning(opts: PlatformOptions): Partial<EngineOptions> {
  return {
    ...(opts.udpOffload === false ? { offload: false } : {}),
    ...(opts.replyPollUs !== undefined ? { replyPollUs: opts.replyPollUs } : {}),
    ...(opts.dataThreads !== undefined ? { dataThreads: opts.dataThreads } : {}),
  };
}

/** The native engine as the udp backend's data plane, with its offload report for the startup log. */
function engineDataPlane(o: DataPlaneOptions, opts: PlatformOptions): TunDataPlane {
  const { vxlan, ...rest } = o;
  const udpOffload = opts.udpOffload ?? true;
  const engine = Engine.open({
    ...rest,
    offload: udpOffload ? o.offload : false,
    ...(opts.replyPollUs !== undefined ? { replyPollUs: opts.replyPollUs } : {}),
    ...(opts.dataThreads !== undefined ? { dataThreads: opts.dataThreads } : {}),
    ...(vxlan ? { encap: 'vxlan' as const, ...vxlan } : {}),
  });
  return {
    get tunName() {
      return engine.tunName;
    },
    get tunIndex() {
      return engine.tunIndex;
    },
    setPeers: (p) => engine.setPeers(p),
    start: () => engine.start(),
    stats: () => engine.stats(),
    close: () => engine.close(),
    capture: {
      get device() {
        return engine.tunName;
      },
      reasons: nativeDropReasons(),
      start: (f) => engine.startCapture(f),
      read: () => engine.readCapture(),
      stop: () => engine.stopCapture(),
    },
    offloadReport: () => {
      const s = engine.stats();
      const notes = s.offloadNotes.trim().replace(/;$/, '');
      const poll = s.replyPoll.windowUs > 0 ? `reply polling ${s.replyPoll.windowUs} us` : 'reply polling off';
      const threads = s.threads.mode === 0 ? 'threads auto' : `threads ${s.threads.mode}`;
      return `offloads ${describeOffloads(s.offloads)}${udpOffload ? '' : ' (-udp-offload=false)'}${notes ? `; off: ${notes}` : ''}; ${poll}; ${threads}`;
    },
  };
}

export function nativePlatform(opts: PlatformOptions = {}): Platform {
  const link = Netlink.open();
  const links = netlinkLinkOps(link);
  const backends = new BackendRegistry().register(
    'udp',
    udpBackendFactory({
      openDataPlane: (o): TunDataPlane => engineDataPlane(o, opts),
      links: () => links,
    }),
  );
  // The kernel-device backends are loaded when the network config asks for them: a node runs one
  // backend, and the others' modules (and node:crypto, which only vxlan uses) are RSS it has no use for.
  let kernel: VxlanOps | undefined;
  const kernelOps = async (): Promise<VxlanOps> => {
    if (!kernel) {
      const { netlinkVxlanOps, withFailpoints } = await import('./backend/kernel-ops.js');
      kernel = withFailpoints(netlinkVxlanOps(link));
    }
    return kernel;
  };
  const userspace = { openDataPlane: (o: DataPlaneOptions): TunDataPlane => engineDataPlane(o, opts), links: () => links };
  backends
    .register('vxlan', async (ctx) => {
      const [{ vxlanBackendFactory }, ops] = await Promise.all([import('./backend/vxlan/vxlan-backend.js'), kernelOps()]);
      return vxlanBackendFactory({ ops: () => ops, userspace, forceUserspace: opts.vxlanUserspace ?? false, watchLinks })(ctx);
    })
    .register('host-gw', async (ctx) => {
      const [{ hostGwBackendFactory }, ops] = await Promise.all([import('./backend/hostgw.js'), kernelOps()]);
      return hostGwBackendFactory({ ops: () => ops })(ctx);
    })
    .register('wireguard', async (ctx) => {
      const { nativeWireguardBackend } = await import('./backend/wireguard/platform.js');
      return nativeWireguardBackend(link, { forceUserspace: opts.wireguardUserspace ?? false, engineOptions: engineTuning(opts) })(ctx);
    });
  return {
    backends,
    systemView: () => netlinkSystemView(link),
    routeOps: () => link,
    close: () => link.close(),
  };
}
