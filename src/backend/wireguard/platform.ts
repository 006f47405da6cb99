// The wireguard backend on the real machine: kernel WireGuard over rtnetlink + generic netlink, our
// userspace device over the native engine, the device's links over rtnetlink. Loaded by src/platform.ts
// only when the network config asks for wireguard.
import type { Backend, BackendContext } from '../types.js';
import { isExists, nl, type Netlink } from '../../netlink/index.js';
import { WireguardGenl } from '../../netlink/genl/wireguard-conn.js';
import { Engine, nativeDropReasons, type EngineOptions } from '../../native/engine.js';
import { wireguardNative } from '../../native/wireguard.js';
import { wireguardBackendFactory } from './backend.js';
import { kernelWgFactory } from './kernel-device.js';
import type { WgLinkOps } from './network.js';
import { userspaceWgFactory } from './userspace-device.js';

/** flannel's address and route calls on the device, over rtnetlink. */
export function netlinkWgLinkOps(link: Netlink): WgLinkOps {
  return {
    listAddrs: (index, family) => link.listAddrs(family, index).map((a) => ({ addr: a.addr, prefixLen: a.prefixLen })),
    addAddr: (index, addr, prefixLen) => {
      try {
        link.addAddr(index, addr, prefixLen);
      } catch (e) {
        if (!isExists(e)) throw e;
      }
    },
    delAddr: (index, addr, prefixLen) => link.delAddr(index, addr, prefixLen),
    setUp: (index) => link.setLinkUp(index),
    replaceRoute: (index, dst) => link.replaceRoute({ dst, oif: index, scope: nl.RT_SCOPE_LINK }),
  };
}

/** The documented test hook: FLANNELTS_WG_TIMING_SCALE=N divides every WireGuard timer by N (1..1000). */
export function wgTimingScale(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.FLANNELTS_WG_TIMING_SCALE;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new Error(`FLANNELTS_WG_TIMING_SCALE=${raw}: must be an integer from 1 to 1000 (a test hook; unset it on real nodes)`);
  return n === 1 ? undefined : n;
}

export interface WireguardPlatformOptions {
  /** -wireguard-userspace. */
  forceUserspace: boolean;
  /** Engine options from flanneld's flags (offloads, reply polling, threads). */
  engineOptions: Partial<EngineOptions>;
}

export function nativeWireguardBackend(link: Netlink, o: WireguardPlatformOptions): (ctx: BackendContext) => Promise<Backend> {
  const links = netlinkWgLinkOps(link);
  const wg = wireguardNative();
  return wireguardBackendFactory({
    kernel: kernelWgFactory({
      links: { findLink: (name) => link.findLink(name), deleteLink: (i) => link.deleteLink(i), addWireguardLink: (name, mtu) => link.addWireguardLink(name, mtu) },
      openGenl: () => WireguardGenl.open(),
    }),
    userspace: userspaceWgFactory({
      newInterface: (opts) => new wg.Interface(opts),
      openEngine: (opts) => Engine.open(opts),
      dropReasons: nativeDropReasons,
      links: { findLink: (name) => link.findLink(name), deleteLink: (i) => link.deleteLink(i), setMtu: (i, mtu) => link.setLinkMtu(i, mtu) },
      timingScale: wgTimingScale(),
      engineOptions: o.engineOptions,
    }),
    forceUserspace: o.forceUserspace,
    links: () => links,
  });
}
