// An in-memory kernel for the vxlan/host-gw backends: links, addresses, main-table routes, neighbours
// and vxlan FDB entries with the kernel's EEXIST/ENOENT/ESRCH behaviour, and a call log so tests can
// check the order flannel uses. Tests delete entries from it "by hand" to exercise reconcile.
import { containsIP, formatCIDR, formatIP, ipEqual, mustParseIP, netEqual, parseCIDR, type Family, type IPAddr, type IPNet } from '../../src/ip/index.js';
import type { VxlanOps } from '../../src/backend/kernel-ops.js';
import type { ExternalInterface } from '../../src/backend/types.js';
import { NetlinkError, nl, type Addr, type FdbSpec, type Link, type Neigh, type NeighSpec, type Route, type RouteGetResult, type RouteSpec, type VxlanLinkSpec } from '../../src/netlink/index.js';

export class FakeKernel implements VxlanOps {
  links = new Map<number, Link>();
  addrs: Addr[] = [];
  routes: Route[] = [];
  neighs: Neigh[] = [];
  fdb: Neigh[] = [];
  calls: string[] = [];
  acceptRaOff: string[] = [];
  /** Underlay: addresses reachable without a gateway on some device, and routed ones (via gateway). */
  direct: Array<{ net: IPNet; oif: number }> = [];
  gatewayFor: Array<{ net: IPNet; gateway: IPAddr; oif: number }> = [];
  private nextIndex = 10;

  addPlainLink(name: string, mtu = 1500, index = this.nextIndex++): Link {
    const l: Link = { index, name, mtu, flags: 0, up: true, kind: 'veth' };
    this.links.set(index, l);
    return l;
  }

  findLink(n: string | number): Link | undefined {
    for (const l of this.links.values()) if (l.name === n || l.index === n) return l;
    return undefined;
  }
  addVxlanLink(s: VxlanLinkSpec): Link {
    this.calls.push(`link add ${s.name}`);
    if (this.findLink(s.name)) throw new NetlinkError(`add link ${s.name}`, 'EEXIST', 17);
    const under = s.link !== undefined ? this.links.get(s.link) : undefined;
    // The kernel clamps a vxlan device's MTU to its underlay's MTU minus the encapsulation (70 over IPv6).
    const mtu = Math.min(s.mtu ?? 1500, under ? under.mtu - (s.local?.family === 6 ? 70 : 50) : 1500);
    const l: Link = {
      index: this.nextIndex++,
      name: s.name,
      mtu,
      flags: 0,
      up: false,
      kind: 'vxlan',
      mac: s.mac,
      vxlan: { vni: s.vni, local: s.local, port: s.port && s.port > 0 ? s.port : 8472, learning: s.learning ?? false, gbp: s.gbp ?? false, link: s.link, udpCsum: s.udpCsum },
    };
    this.links.set(l.index, l);
    return l;
  }
  deleteLink(i: number): void {
    this.calls.push(`link del ${this.links.get(i)?.name}`);
    this.links.delete(i);
    // The kernel deletes a vxlan device together with its lower (external) device.
    for (const l of [...this.links.values()]) if (l.vxlan?.link === i) this.deleteLink(l.index);
    this.routes = this.routes.filter((r) => r.oif !== i);
    this.neighs = this.neighs.filter((n) => n.index !== i);
    this.fdb = this.fdb.filter((n) => n.index !== i);
    this.addrs = this.addrs.filter((a) => a.index !== i);
  }
  setLinkUp(i: number): void {
    const l = this.links.get(i);
    if (l) l.up = true;
  }
  setLinkMtu(i: number, m: number): void {
    const l = this.links.get(i);
    if (!l) throw new NetlinkError(`set link #${i} mtu ${m}`, 'ENODEV', 19);
    const under = l.vxlan?.link !== undefined ? this.links.get(l.vxlan.link) : undefined;
    if (under && m > under.mtu - (l.vxlan?.local?.family === 6 ? 70 : 50)) throw new NetlinkError(`set link ${l.name} mtu ${m}`, 'EINVAL', 22);
    l.mtu = m;
  }
  disableAcceptRA(d: string): void {
    this.acceptRaOff.push(d);
  }
  listAddrs(f?: Family, i?: number): Addr[] {
    return this.addrs.filter((a) => (f === undefined || a.family === f) && (i === undefined || a.index === i));
  }
  addAddr(index: number, addr: IPAddr, prefixLen: number): void {
    if (this.addrs.some((a) => a.index === index && ipEqual(a.addr, addr))) throw new NetlinkError('add address', 'EEXIST', 17);
    this.addrs.push({ index, family: addr.family, addr, prefixLen, scope: 0, flags: 0 });
  }
  delAddr(index: number, addr: IPAddr): void {
    this.addrs = this.addrs.filter((a) => !(a.index === index && ipEqual(a.addr, addr)));
  }

  listRoutes(f: Family): Route[] {
    return this.routes.filter((r) => r.family === f).map((r) => ({ ...r }));
  }
  private toRoute(s: RouteSpec): Route {
    return { family: s.dst.family, dst: s.dst, gateway: s.gateway, oif: s.oif, onlink: s.onlink ?? false, table: 254, scope: s.scope ?? 0, protocol: 3, type: s.type ?? nl.RTN_UNICAST, flags: 0 };
  }
  private checkGateway(s: RouteSpec): void {
    // Without onlink the kernel insists the gateway is directly reachable.
    if (s.gateway && !s.onlink && !this.direct.some((d) => containsIP(d.net, s.gateway!) && (s.oif === undefined || s.oif === d.oif))) {
      throw new NetlinkError(`add route ${formatCIDR(s.dst)} via ${formatIP(s.gateway)}`, 'ENETUNREACH', 101, 'Nexthop has invalid gateway');
    }
  }
  addRoute(s: RouteSpec): void {
    this.calls.push(`route add ${formatCIDR(s.dst)}`);
    if (this.routes.some((r) => netEqual(r.dst, s.dst))) throw new NetlinkError(`add route ${formatCIDR(s.dst)}`, 'EEXIST', 17);
    this.checkGateway(s);
    this.routes.push(this.toRoute(s));
  }
  replaceRoute(s: RouteSpec): void {
    this.calls.push(`route replace ${formatCIDR(s.dst)}`);
    this.checkGateway(s);
    this.routes = this.routes.filter((r) => !netEqual(r.dst, s.dst));
    this.routes.push(this.toRoute(s));
  }
  delRoute(s: RouteSpec): void {
    this.calls.push(`route del ${formatCIDR(s.dst)}`);
    const i = this.routes.findIndex(
      (r) => netEqual(r.dst, s.dst) && (!s.gateway || (r.gateway !== undefined && ipEqual(r.gateway, s.gateway))) && (s.oif === undefined || r.oif === s.oif),
    );
    if (i < 0) throw new NetlinkError(`delete route ${formatCIDR(s.dst)}`, 'ESRCH', 3);
    this.routes.splice(i, 1);
  }
  routeGet(dst: IPAddr): RouteGetResult {
    const d = this.direct.find((x) => containsIP(x.net, dst));
    if (d) return { oif: d.oif, table: 254 };
    const g = this.gatewayFor.find((x) => containsIP(x.net, dst));
    if (g) return { oif: g.oif, gateway: g.gateway, table: 254 };
    throw new NetlinkError(`get route to ${formatIP(dst)}`, 'ENETUNREACH', 101);
  }

  listNeighs(f: Family, i?: number): Neigh[] {
    return this.neighs.filter((n) => n.dst?.family === f && (i === undefined || n.index === i)).map((n) => ({ ...n }));
  }
  replaceNeigh(n: NeighSpec): void {
    this.calls.push(`neigh replace ${formatIP(n.dst)}`);
    if (!this.links.has(n.index)) throw new NetlinkError(`replace neighbour ${formatIP(n.dst)} dev #${n.index}`, 'ENODEV', 19);
    this.neighs = this.neighs.filter((x) => !(x.index === n.index && x.dst && ipEqual(x.dst, n.dst)));
    this.neighs.push({ af: n.dst.family === 4 ? 2 : 10, index: n.index, dst: n.dst, lladdr: n.lladdr, state: n.state ?? nl.NUD_PERMANENT, flags: 0 });
  }
  delNeigh(index: number, dst: IPAddr): void {
    this.calls.push(`neigh del ${formatIP(dst)}`);
    const before = this.neighs.length;
    this.neighs = this.neighs.filter((x) => !(x.index === index && x.dst && ipEqual(x.dst, dst)));
    if (this.neighs.length === before) throw new NetlinkError(`delete neighbour ${formatIP(dst)}`, 'ENOENT', 2);
  }
  listFdb(i: number): Neigh[] {
    return this.fdb.filter((n) => n.index === i).map((n) => ({ ...n }));
  }
  replaceFdb(f: FdbSpec): void {
    this.calls.push(`fdb replace ${f.lladdr}`);
    if (!this.links.has(f.index)) throw new NetlinkError(`replace fdb ${f.lladdr} dev #${f.index}`, 'ENODEV', 19);
    this.fdb = this.fdb.filter((x) => !(x.index === f.index && x.lladdr === f.lladdr));
    this.fdb.push({ af: 7, index: f.index, lladdr: f.lladdr, dst: f.dst, state: nl.NUD_PERMANENT, flags: nl.NTF_SELF });
  }
  delFdb(f: FdbSpec): void {
    this.calls.push(`fdb del ${f.lladdr}`);
    const before = this.fdb.length;
    this.fdb = this.fdb.filter((x) => !(x.index === f.index && x.lladdr === f.lladdr && x.dst && ipEqual(x.dst, f.dst)));
    if (this.fdb.length === before) throw new NetlinkError(`delete fdb ${f.lladdr}`, 'ENOENT', 2);
  }

  /** Text views for assertions, in `ip`/`bridge` style. */
  routeLines(f: Family = 4): string[] {
    return this.routes
      .filter((r) => r.family === f)
      .map((r) => `${formatCIDR(r.dst)}${r.gateway ? ` via ${formatIP(r.gateway)}` : ''} dev ${this.links.get(r.oif ?? -1)?.name ?? r.oif}${r.onlink ? ' onlink' : ''}`)
      .sort();
  }
  neighLines(): string[] {
    return this.neighs.map((n) => `${n.dst ? formatIP(n.dst) : '?'} dev ${this.links.get(n.index)?.name} lladdr ${n.lladdr} ${n.state === nl.NUD_PERMANENT ? 'PERMANENT' : n.state}`).sort();
  }
  fdbLines(): string[] {
    return this.fdb.map((n) => `${n.lladdr} dev ${this.links.get(n.index)?.name} dst ${n.dst ? formatIP(n.dst) : '?'} self permanent`).sort();
  }
}

/**
 * A kernel with eth0 (index 2) on 198.18.0.0/24 and 2001:db8::/64, 198.18.1.0/24 behind a router at
 * 198.18.0.1, and the external interface as the daemon would pick it (198.18.0.11 and `v6`).
 */
export function kernelWithEth0(v6 = '2001:db8::11'): { k: FakeKernel; ext: ExternalInterface } {
  const k = new FakeKernel();
  k.addPlainLink('eth0', 1500, 2);
  k.direct.push({ net: parseCIDR('198.18.0.0/24')!, oif: 2 }, { net: parseCIDR('2001:db8::/64')!, oif: 2 });
  k.gatewayFor.push({ net: parseCIDR('198.18.1.0/24')!, gateway: mustParseIP('198.18.0.1'), oif: 2 });
  const ext: ExternalInterface = {
    name: 'eth0',
    index: 2,
    mtu: 1500,
    ifaceAddr: mustParseIP('198.18.0.11'),
    publicIP: mustParseIP('198.18.0.11'),
    ifaceAddrV6: mustParseIP(v6),
    publicIPv6: mustParseIP(v6),
  };
  return { k, ext };
}
