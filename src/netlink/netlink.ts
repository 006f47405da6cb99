// Netlink: the rtnetlink operations flannel's backends need (links, addresses, routes, neighbours,
// vxlan FDB), over one synchronous socket. Kernel refusals throw NetlinkError naming the object.
import type { Family, IPAddr } from '../ip/types.js';
import { familyToAf } from './addr.js';
import {
  AF_BRIDGE,
  AF_UNSPEC,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  RT_TABLE_MAIN,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELNEIGH,
  RTM_DELROUTE,
  RTM_F_CLONED,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETNEIGH,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTN_UNICAST,
} from './constants.js';
import type { Decoded, NlMessage } from './codec.js';
import { NetlinkConn, type ConnOptions } from './conn.js';
import { NetlinkError, isNotFound } from './errors.js';
import { decodeAddr, encodeAddr, encodeAddrDump } from './addr-msg.js';
import { decodeLink, encodeDelLink, encodeGetLink, encodeNewVxlanLink, encodeSetLinkMtu, encodeSetLinkUp } from './link-msg.js';
import { decodeNeigh, encodeFdb, encodeNeigh, encodeNeighDump, encodeNeighKey } from './neigh-msg.js';
import { decodeRoute, decodeRouteGet, encodeRoute, encodeRouteDump, encodeRouteGet } from './route-msg.js';
import { openNetlinkSocket, type NetlinkTransport } from './socket.js';
import { wireguardLinkBody } from './genl/wireguard.js';
import type { Addr, AddrSpec, FdbSpec, Link, Neigh, NeighSpec, Route, RouteGetResult, RouteSpec, VxlanLinkSpec } from './types.js';
import { formatIP, formatCIDR } from '../ip/index.js';

export class Netlink {
  private readonly conn: NetlinkConn;

  constructor(transport: NetlinkTransport, opts: ConnOptions = {}) {
    this.conn = new NetlinkConn(transport, opts);
  }

  /** Opens an rtnetlink socket in the calling process's network namespace. */
  static open(opts: ConnOptions = {}): Netlink {
    return new Netlink(openNetlinkSocket(), opts);
  }

  close(): void {
    this.conn.close();
  }

  // ---- links ----------------------------------------------------------------------------------

  listLinks(): Link[] {
    return decodeAll(this.conn.dump(RTM_GETLINK, encodeGetLink(0), 'list links'), decodeLink, 'list links');
  }

  /** One link by name or index; throws NetlinkError ENODEV when there is none. */
  getLink(nameOrIndex: string | number): Link {
    const op = `get link ${nameOrIndex}`;
    const msgs = this.conn.request(RTM_GETLINK, 0, encodeGetLink(nameOrIndex), op);
    const links = decodeAll(msgs, decodeLink, op);
    const first = links[0];
    if (!first) throw new NetlinkError(op, 'ENODEV', 0, 'kernel sent no link');
    return first;
  }

  /** Like getLink, but undefined when the link does not exist. */
  findLink(nameOrIndex: string | number): Link | undefined {
    try {
      return this.getLink(nameOrIndex);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  setLinkUp(index: number): void {
    this.conn.request(RTM_NEWLINK, 0, encodeSetLinkUp(index, true), () => `set link ${this.devName(index)} up`);
  }

  setLinkDown(index: number): void {
    this.conn.request(RTM_NEWLINK, 0, encodeSetLinkUp(index, false), () => `set link ${this.devName(index)} down`);
  }

  setLinkMtu(index: number, mtu: number): void {
    this.conn.request(RTM_NEWLINK, 0, encodeSetLinkMtu(index, mtu), () => `set link ${this.devName(index)} mtu ${mtu}`);
  }

  /** Creates a vxlan device (EEXIST if the name is taken) and returns it as the kernel reports it. */
  addVxlanLink(spec: VxlanLinkSpec): Link {
    const op = (): string =>
      `add link ${spec.name} type vxlan id ${spec.vni}` +
      (spec.local ? ` local ${formatIP(spec.local)}` : '') +
      (spec.link !== undefined ? ` dev ${this.devName(spec.link)}` : '') +
      ` dstport ${spec.port ?? 0}`;
    this.conn.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, encodeNewVxlanLink(spec), op);
    return this.getLink(spec.name);
  }

  /** Creates a WireGuard device: EEXIST if the name is taken, EOPNOTSUPP on a kernel without WireGuard. */
  addWireguardLink(name: string, mtu: number): Link {
    this.conn.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, wireguardLinkBody(name, mtu), `add link ${name} type wireguard`);
    return this.getLink(name);
  }

  deleteLink(index: number): void {
    this.conn.request(RTM_DELLINK, 0, encodeDelLink(index), () => `delete link ${this.devName(index)}`);
  }

  // ---- addresses ------------------------------------------------------------------------------

  listAddrs(family?: Family, index?: number): Addr[] {
    const af = family === undefined ? AF_UNSPEC : familyToAf(family);
    const all = decodeAll(this.conn.dump(RTM_GETADDR, encodeAddrDump(af), 'list addresses'), decodeAddr, 'list addresses');
    return all.filter((a) => (family === undefined || a.family === family) && (index === undefined || a.index === index));
  }

  /** Adds an address; EEXIST when it is already there. */
  addAddr(index: number, addr: IPAddr, prefixLen: number, opts: Pick<AddrSpec, 'scope' | 'flags'> = {}): void {
    const spec: AddrSpec = { ...opts, index, addr, prefixLen };
    this.conn.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, encodeAddr(spec), () => this.addrOp('add', spec));
  }

  /** Adds or updates an address (`ip addr replace`): no error when it exists. */
  replaceAddr(index: number, addr: IPAddr, prefixLen: number, opts: Pick<AddrSpec, 'scope' | 'flags'> = {}): void {
    const spec: AddrSpec = { ...opts, index, addr, prefixLen };
    this.conn.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, encodeAddr(spec), () => this.addrOp('replace', spec));
  }

  delAddr(index: number, addr: IPAddr, prefixLen: number): void {
    const spec: AddrSpec = { index, addr, prefixLen };
    this.conn.request(RTM_DELADDR, 0, encodeAddr(spec), () => this.addrOp('delete', spec));
  }

  // ---- routes ---------------------------------------------------------------------------------

  /** Routes of one table (main by default); kernel-cloned cache entries are left out. */
  listRoutes(family: Family, table: number = RT_TABLE_MAIN): Route[] {
    const op = `list IPv${family} routes table ${table}`;
    const all = decodeAll(this.conn.dump(RTM_GETROUTE, encodeRouteDump(familyToAf(family)), op), decodeRoute, op);
    return all.filter((r) => r.family === family && r.table === table && (r.flags & RTM_F_CLONED) === 0);
  }

  /** Adds a route; an identical existing route fails with code EEXIST (see isExists). */
  addRoute(r: RouteSpec): void {
    this.conn.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, encodeRoute(r), () => this.routeOp('add', r));
  }

  replaceRoute(r: RouteSpec): void {
    this.conn.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, encodeRoute(r), () => this.routeOp('replace', r));
  }

  delRoute(r: RouteSpec): void {
    this.conn.request(RTM_DELROUTE, 0, encodeRoute(r, true), () => this.routeOp('delete', r));
  }

  /** Index of the interface carrying the default route of the main table (lowest metric wins). */
  defaultRouteInterface(family: Family): number | undefined {
    const defaults = this.listRoutes(family)
      .filter((r) => r.dst.prefixLen === 0 && r.type === RTN_UNICAST && r.oif !== undefined)
      .sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0));
    return defaults[0]?.oif;
  }

  /** The route the kernel would use for dst (`ip route get`): outgoing interface and source address. */
  routeGet(dst: IPAddr): RouteGetResult {
    const op = `get route to ${formatIP(dst)}`;
    const msgs = this.conn.request(RTM_GETROUTE, 0, encodeRouteGet(dst), op);
    const first = decodeAll(msgs, decodeRouteGet, op)[0];
    if (!first) throw new NetlinkError(op, 'ENETUNREACH', 0, 'kernel sent no route');
    return first;
  }

  // ---- neighbours and FDB ---------------------------------------------------------------------

  listNeighs(family: Family, index?: number): Neigh[] {
    const af = familyToAf(family);
    const op = `list IPv${family} neighbours`;
    const all = decodeAll(this.conn.dump(RTM_GETNEIGH, encodeNeighDump(af), op), decodeNeigh, op);
    return all.filter((n) => n.af === af && (index === undefined || n.index === index));
  }

  /** Adds a neighbour entry (default NUD_PERMANENT); EEXIST when one exists for that address. */
  addNeigh(n: NeighSpec): void {
    this.conn.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, encodeNeigh(n), () => this.neighOp('add', n));
  }

  /** Adds or overwrites a neighbour entry (flannel's NeighSet; `ip neigh replace`). */
  replaceNeigh(n: NeighSpec): void {
    this.conn.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, encodeNeigh(n), () => this.neighOp('replace', n));
  }

  delNeigh(index: number, dst: IPAddr): void {
    this.conn.request(RTM_DELNEIGH, 0, encodeNeighKey(index, dst), () => `delete neighbour ${formatIP(dst)} dev ${this.devName(index)}`);
  }

  /** `bridge fdb append <mac> dst <ip> dev <vxlan> self permanent`: adds a remote, keeps others. */
  addFdb(f: FdbSpec): void {
    this.conn.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND, encodeFdb(f), () => this.fdbOp('append', f));
  }

  /** flannel's AddFDB (netlink NeighSet, AF_BRIDGE): creates or overwrites the entry for the MAC. */
  replaceFdb(f: FdbSpec): void {
    this.conn.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, encodeFdb(f), () => this.fdbOp('replace', f));
  }

  delFdb(f: FdbSpec): void {
    this.conn.request(RTM_DELNEIGH, 0, encodeFdb(f), () => this.fdbOp('delete', f));
  }

  /** FDB entries of one device (AF_BRIDGE dump filtered by index). */
  listFdb(index: number): Neigh[] {
    const op = `list fdb dev ${index}`;
    const all = decodeAll(this.conn.dump(RTM_GETNEIGH, encodeNeighDump(AF_BRIDGE), op), decodeNeigh, op);
    return all.filter((n) => n.af === AF_BRIDGE && n.index === index);
  }

  // ---- naming for error messages --------------------------------------------------------------

  /** Device name for messages; falls back to "#<index>" so naming never masks the real error. */
  private devName(index: number): string {
    try {
      return this.getLink(index).name;
    } catch {
      return `#${index}`;
    }
  }

  private addrOp(verb: string, s: AddrSpec): string {
    return `${verb} address ${formatIP(s.addr)}/${s.prefixLen} dev ${this.devName(s.index)}`;
  }

  private routeOp(verb: string, r: RouteSpec): string {
    let s = `${verb} route ${formatCIDR(r.dst)}`;
    if (r.gateway) s += ` via ${formatIP(r.gateway)}`;
    if (r.oif !== undefined) s += ` dev ${this.devName(r.oif)}`;
    if (r.onlink) s += ' onlink';
    if (r.table !== undefined && r.table !== RT_TABLE_MAIN) s += ` table ${r.table}`;
    return s;
  }

  private neighOp(verb: string, n: NeighSpec): string {
    return `${verb} neighbour ${formatIP(n.dst)} lladdr ${n.lladdr} dev ${this.devName(n.index)}`;
  }

  private fdbOp(verb: string, f: FdbSpec): string {
    return `${verb} fdb ${f.lladdr} dst ${formatIP(f.dst)} dev ${this.devName(f.index)}`;
  }
}

/** Decodes every message; one undecodable kernel message fails the whole call with EBADMSG. */
function decodeAll<T>(msgs: NlMessage[], decode: (p: Buffer) => Decoded<T>, op: string): T[] {
  const out: T[] = [];
  for (const m of msgs) {
    const r = decode(m.payload);
    if (!r.ok) throw new NetlinkError(op, 'EBADMSG', 0, r.error);
    out.push(r.value);
  }
  return out;
}
