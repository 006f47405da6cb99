import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IfaceError, selectExternalInterface, type AddrView, type IfaceOptions, type LinkView, type SystemView } from '../../src/iface.js';
import { formatIP, mustParseIP, type IPAddr } from '../../src/ip/index.js';

function view(routes: { def4?: number; def6?: number; reach?: (d: IPAddr) => number | undefined } = {}): SystemView {
  const links: LinkView[] = [
    { index: 1, name: 'lo', mtu: 65536, up: true },
    { index: 2, name: 'eth0', mtu: 1500, up: true },
    { index: 3, name: 'ens5', mtu: 9001, up: true },
  ];
  const a = (index: number, ip: string, prefixLen: number): AddrView => ({ index, addr: mustParseIP(ip), prefixLen });
  const addrs: AddrView[] = [
    a(1, '127.0.0.1', 8),
    a(2, '198.18.0.11', 24),
    a(2, 'fe80::1', 64),
    a(2, '2001:db8::11', 64),
    a(3, '198.18.1.5', 24),
    a(3, '198.18.1.6', 24),
  ];
  return {
    links: () => links,
    addrs: () => addrs,
    defaultRouteIndex: (f) => (f === 4 ? routes.def4 : routes.def6),
    routeGetIndex: (d) => routes.reach?.(d),
  };
}

const base: IfaceOptions = { iface: [], ifaceRegex: [], ifaceCanReach: '', publicIP: '', publicIPv6: '', enableIPv4: true, enableIPv6: false };
const pick = (v: SystemView, o: Partial<IfaceOptions>) => selectExternalInterface(v, { ...base, ...o });

test('default route interface when nothing is given', () => {
  const e = pick(view({ def4: 3 }), {});
  assert.equal(e.name, 'ens5');
  assert.equal(e.mtu, 9001);
  assert.equal(formatIP(e.publicIP!), '198.18.1.5');
});

test('no default route is a clear error that says how to fix it', () => {
  assert.throws(() => pick(view(), {}), (e: unknown) => e instanceof IfaceError && /give -iface/.test(e.message));
});

test('-iface by name and by address; the given address is preferred', () => {
  assert.equal(pick(view(), { iface: ['eth0'] }).name, 'eth0');
  const e = pick(view(), { iface: ['198.18.1.6'] });
  assert.equal(e.name, 'ens5');
  assert.equal(formatIP(e.ifaceAddr!), '198.18.1.6');
});

test('-iface entries are tried in order; a miss is noted and the next is used', () => {
  const notes: string[] = [];
  const e = selectExternalInterface(view(), { ...base, iface: ['wlan0', 'ens5'] }, (m) => notes.push(m));
  assert.equal(e.name, 'ens5');
  assert.match(notes[0]!, /Could not find valid interface matching wlan0/);
});

test('-iface-regex matches addresses before names, after -iface', () => {
  assert.equal(pick(view(), { ifaceRegex: ['^198\\.18\\.1\\.'] }).name, 'ens5');
  assert.equal(pick(view(), { ifaceRegex: ['^eth'] }).name, 'eth0');
  assert.equal(pick(view(), { iface: ['eth0'], ifaceRegex: ['^ens'] }).name, 'eth0');
});

test('-iface-can-reach uses the route lookup', () => {
  const e = pick(view({ reach: (d) => (formatIP(d) === '198.18.1.99' ? 3 : undefined) }), { ifaceCanReach: '198.18.1.99' });
  assert.equal(e.name, 'ens5');
  assert.throws(() => pick(view(), { ifaceCanReach: 'not-an-ip' }), /invalid -iface-can-reach/);
});

test('nothing matching the given interfaces is flannel\'s error', () => {
  assert.throws(() => pick(view(), { iface: ['wlan0'], ifaceRegex: ['^wl'] }), /matches the interfaces and\/or regexes provided/);
});

test('-public-ip overrides the advertised address; must be the right family', () => {
  const e = pick(view(), { iface: ['eth0'], publicIP: '198.18.9.9' });
  assert.equal(formatIP(e.publicIP!), '198.18.9.9');
  assert.equal(formatIP(e.ifaceAddr!), '198.18.0.11');
  assert.throws(() => pick(view(), { iface: ['eth0'], publicIP: '2001:db8::1' }), /not an IPv4 address/);
});

test('-public-ip alone selects the interface holding it, or falls back to the default route', () => {
  assert.equal(pick(view({ def4: 2 }), { publicIP: '198.18.1.5' }).name, 'ens5');
  const e = pick(view({ def4: 2 }), { publicIP: '198.18.200.1' });
  assert.equal(e.name, 'eth0');
  assert.equal(formatIP(e.publicIP!), '198.18.200.1');
});

test('IPv6: global before link-local (listed first here); an interface without IPv6 is refused with the reason', () => {
  const e = pick(view(), { iface: ['eth0'], enableIPv6: true });
  assert.equal(formatIP(e.publicIPv6!), '2001:db8::11');
  const notes: string[] = [];
  assert.throws(() => selectExternalInterface(view(), { ...base, iface: ['ens5'], enableIPv6: true }, (m) => notes.push(m)), /matches the interfaces/);
  assert.match(notes[0]!, /ens5 has no usable IPv6 address/);
});

test('address choice as flannel v0.28 pkg/ip: unicast only, deprecated skipped, global > link-local, permanent > dynamic, non-temporary > temporary, ties in kernel order', () => {
  const TEMPORARY = 0x01;
  const DEPRECATED = 0x20;
  const PERMANENT = 0x80;
  const a = (ip: string, flags: number): AddrView => ({ index: 2, addr: mustParseIP(ip), prefixLen: 64, flags });
  const only = (addrs: AddrView[], family: 4 | 6 = 6): string => {
    const v: SystemView = { links: () => [{ index: 2, name: 'eth0', mtu: 1500, up: true }], addrs: () => addrs, defaultRouteIndex: () => 2, routeGetIndex: () => undefined };
    const e = selectExternalInterface(v, { ...base, enableIPv4: family === 4, enableIPv6: family === 6 });
    return formatIP(family === 4 ? e.publicIP! : e.publicIPv6!);
  };
  assert.equal(only([a('fe80::1', PERMANENT), a('2001:db8::a', 0)]), '2001:db8::a', 'global before link-local');
  assert.equal(only([a('fe80::1', PERMANENT)]), 'fe80::1', 'link-local when nothing global');
  assert.equal(only([a('2001:db8::a', 0), a('2001:db8::b', PERMANENT)]), '2001:db8::b', 'permanent before dynamic (SLAAC)');
  assert.equal(only([a('2001:db8::a', TEMPORARY), a('2001:db8::b', 0)]), '2001:db8::b', 'non-temporary before temporary');
  assert.equal(only([a('2001:db8::a', PERMANENT | DEPRECATED), a('2001:db8::b', TEMPORARY)]), '2001:db8::b', 'deprecated never');
  assert.equal(only([a('ff02::1', PERMANENT), a('::1', PERMANENT), a('2001:db8::c', 0)]), '2001:db8::c', 'multicast, loopback skipped');
  assert.equal(only([a('2001:db8::2', PERMANENT), a('2001:db8::1', PERMANENT)]), '2001:db8::2', 'a tie keeps the kernel order');
  assert.equal(only([a('2001:db8::1', PERMANENT), a('2001:db8::2', PERMANENT)]), '2001:db8::1', 'a tie keeps the kernel order');
  assert.equal(only([a('169.254.0.5', PERMANENT), a('198.18.0.11', PERMANENT)], 4), '198.18.0.11');
  assert.equal(only([a('198.18.0.11', PERMANENT), a('198.18.0.12', PERMANENT)], 4), '198.18.0.11', 'IPv4: the primary (first) address');
  assert.equal(only([a('198.18.0.9', 0), a('198.18.0.11', PERMANENT)], 4), '198.18.0.11');
  assert.throws(() => only([a('2001:db8::a', DEPRECATED)]), /no usable IPv6 address/);
});
