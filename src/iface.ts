// External interface selection, flannel's order (pkg/ipmatch): -iface entries (name or IP), then
// -iface-regex (matched against addresses, then names), then -iface-can-reach, else the interface of
// the default route. Pure over a SystemView so it is tested with in-memory doubles; the daemon backs
// the view with netlink.
import type { ExternalInterface } from './backend/types.js';
import { formatIP, parseIP, type IPAddr } from './ip/index.js';
import { preferredAddrs } from './ip/preference.js';

export interface LinkView {
  index: number;
  name: string;
  mtu: number;
  up: boolean;
}

export interface AddrView {
  index: number;
  addr: IPAddr;
  prefixLen: number;
  /** IFA_F_* (deprecated, permanent, temporary decide which address is advertised). */
  flags?: number;
}

export interface SystemView {
  links(): LinkView[];
  addrs(): AddrView[];
  /** ifindex of the default route for the family, if any. */
  defaultRouteIndex(family: 4 | 6): number | undefined;
  /** ifindex the kernel would use to reach dst (RTM_GETROUTE), if any. */
  routeGetIndex(dst: IPAddr): number | undefined;
}

export interface IfaceOptions {
  iface: string[];
  ifaceRegex: string[];
  ifaceCanReach: string;
  publicIP: string;
  publicIPv6: string;
  enableIPv4: boolean;
  enableIPv6: boolean;
}

export class IfaceError extends Error {}

/** Why each candidate was rejected, for flannel's "Could not find valid interface matching" lines. */
export type Note = (msg: string) => void;

/** The interface's usable addresses, flannel v0.28's preferred first (ip/preference.ts). */
function addrsOf(view: SystemView, index: number, family: 4 | 6): AddrView[] {
  return preferredAddrs(view.addrs().filter((a) => a.index === index), family);
}

/** Builds the ExternalInterface for a chosen link, checking it has what the enabled families need. */
function describe(view: SystemView, link: LinkView, opts: IfaceOptions, preferred?: IPAddr): ExternalInterface {
  const v4 = addrsOf(view, link.index, 4);
  const v6 = addrsOf(view, link.index, 6);
  const pick = (list: AddrView[]): IPAddr | undefined =>
    (preferred && list.find((a) => a.addr.family === preferred.family && a.addr.value === preferred.value)?.addr) ?? list[0]?.addr;
  const ifaceAddr = pick(v4);
  const ifaceAddrV6 = pick(v6);
  if (opts.enableIPv4 && !ifaceAddr) throw new IfaceError(`interface ${link.name} has no usable IPv4 address (global or link-local unicast, not deprecated)`);
  if (opts.enableIPv6 && !ifaceAddrV6) throw new IfaceError(`interface ${link.name} has no usable IPv6 address (global or link-local unicast, not deprecated)`);
  const publicIP = parsePublic(opts.publicIP, 4) ?? ifaceAddr;
  const publicIPv6 = parsePublic(opts.publicIPv6, 6) ?? ifaceAddrV6;
  return {
    name: link.name,
    index: link.index,
    mtu: link.mtu,
    ifaceAddr: opts.enableIPv4 ? ifaceAddr : undefined,
    ifaceAddrV6: opts.enableIPv6 ? ifaceAddrV6 : undefined,
    publicIP: opts.enableIPv4 ? publicIP : undefined,
    publicIPv6: opts.enableIPv6 ? publicIPv6 : undefined,
  };
}

/** -public-ip/-public-ipv6 as an address of the right family; undefined when not given. */
function parsePublic(text: string, family: 4 | 6): IPAddr | undefined {
  if (text === '') return undefined;
  const p = parseIP(text);
  if (!p || p.family !== family) {
    throw new IfaceError(`invalid -public-ip${family === 6 ? 'v6' : ''} "${text}": not an IPv${family} address`);
  }
  return p;
}

function byNameOrIP(view: SystemView, spec: string, opts: IfaceOptions): ExternalInterface {
  const ip = parseIP(spec);
  if (ip) {
    const owner = view.addrs().find((a) => a.addr.family === ip.family && a.addr.value === ip.value);
    const link = owner && view.links().find((l) => l.index === owner.index);
    if (!link) throw new IfaceError(`no interface has address ${formatIP(ip)}`);
    return describe(view, link, opts, ip);
  }
  const link = view.links().find((l) => l.name === spec);
  if (!link) throw new IfaceError(`no interface named ${spec}`);
  return describe(view, link, opts);
}

function byRegex(view: SystemView, pattern: string, opts: IfaceOptions): ExternalInterface {
  const re = new RegExp(pattern);
  // flannel matches addresses first, then names.
  for (const a of view.addrs()) {
    if (!re.test(formatIP(a.addr))) continue;
    const link = view.links().find((l) => l.index === a.index);
    if (link) return describe(view, link, opts, a.addr);
  }
  for (const link of view.links()) {
    if (re.test(link.name)) return describe(view, link, opts);
  }
  throw new IfaceError(`no interface name or address matches /${pattern}/`);
}

function byIndex(view: SystemView, index: number | undefined, what: string, opts: IfaceOptions): ExternalInterface {
  const link = index === undefined ? undefined : view.links().find((l) => l.index === index);
  if (!link) throw new IfaceError(`${what}: no such interface`);
  return describe(view, link, opts);
}

export function selectExternalInterface(view: SystemView, opts: IfaceOptions, note: Note = () => {}): ExternalInterface {
  // A malformed -public-ip is a configuration error, not a reason to try the next interface.
  parsePublic(opts.publicIP, 4);
  parsePublic(opts.publicIPv6, 6);
  const family: 4 | 6 = opts.enableIPv4 ? 4 : 6;
  if (opts.iface.length === 0 && opts.ifaceRegex.length === 0 && opts.ifaceCanReach === '') {
    // With -public-ip alone flannel uses the interface holding that address; a NATed public IP is
    // not on any interface, so fall back to the default route's interface as flannel's users expect.
    const pub = family === 4 ? opts.publicIP : opts.publicIPv6;
    if (pub !== '') {
      try {
        return byNameOrIP(view, pub, opts);
      } catch (e) {
        note(`public IP ${pub} is not on a local interface (${(e as Error).message}); using the default route's interface`);
      }
    }
    try {
      return byIndex(view, view.defaultRouteIndex(family), `default route (IPv${family})`, opts);
    } catch (e) {
      throw new IfaceError(
        `Failed to find any valid interface to use: ${(e as Error).message}; give -iface <name or IP> or add a default route`,
      );
    }
  }
  for (const spec of opts.iface) {
    try {
      return byNameOrIP(view, spec, opts);
    } catch (e) {
      note(`Could not find valid interface matching ${spec}: ${(e as Error).message}`);
    }
  }
  for (const pattern of opts.ifaceRegex) {
    try {
      return byRegex(view, pattern, opts);
    } catch (e) {
      note(`Could not find valid interface matching ${pattern}: ${(e as Error).message}`);
    }
  }
  if (opts.ifaceCanReach !== '') {
    const dst = parseIP(opts.ifaceCanReach);
    if (!dst) throw new IfaceError(`invalid -iface-can-reach "${opts.ifaceCanReach}": not an IP address`);
    try {
      return byIndex(view, view.routeGetIndex(dst), `route to ${opts.ifaceCanReach}`, opts);
    } catch (e) {
      note(`Could not find valid interface matching ifaceCanReach: ${opts.ifaceCanReach}: ${(e as Error).message}`);
    }
  }
  throw new IfaceError('Failed to find interface to use that matches the interfaces and/or regexes provided');
}
