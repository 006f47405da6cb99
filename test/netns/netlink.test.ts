// Our Netlink API against the real kernel, inside a namespace this test creates. The operations run
// in a child process spawned in that namespace (the test process itself stays in the root namespace
// and never touches its devices); every result is checked independently with `ip -j` / `bridge -j`.
//
// NETLINK_RECORD=1 additionally writes the raw kernel replies to test/fixtures/netlink/*.hex, the
// fixtures the codec unit tests decode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { NetnsSet, type Namespace } from '../../src/lab/netns.js';
import type { IPAddr, IPNet } from '../../src/ip/types.js';
import type { Addr, Link, Neigh, Route, RouteGetResult } from '../../src/netlink/index.js';
import { bigintReplacer, bigintReviver, type RpcReply } from '../fixtures/netlink-ops.js';
import { binary, need, rootAndNetns } from '../helpers/prereq.js';
import { sleep } from '../../src/util/sleep.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/test/netns
const opsScript = join(here, '..', 'fixtures', 'netlink-ops.js');
const fixtureDir = join(here, '..', '..', '..', 'test', 'fixtures', 'netlink');
const record = process.env.NETLINK_RECORD === '1';

const v4 = (s: string): IPAddr => ({ family: 4, value: s.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n) });
const net4 = (s: string): IPNet => {
  const [a, p] = s.split('/');
  return { ...v4(a ?? ''), prefixLen: Number(p) };
};
/** 2001:db8::<suffix> written as hex words, enough for the few v6 addresses used here. */
const v6 = (s: string): IPAddr => {
  const [head, tail] = s.split('::');
  const hw = (head ?? '').split(':').filter(Boolean);
  const tw = (tail ?? '').split(':').filter(Boolean);
  const words = [...hw, ...Array<string>(8 - hw.length - tw.length).fill('0'), ...tw];
  return { family: 6, value: words.reduce((a, w) => (a << 16n) | BigInt(parseInt(w, 16)), 0n) };
};
const net6 = (s: string): IPNet => {
  const [a, p] = s.split('/');
  return { ...v6(a ?? ''), prefixLen: Number(p) };
};

/** Line-oriented RPC client for test/fixtures/netlink-ops.ts running inside the namespace. */
class OpsClient {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: RpcReply) => void>();
  private stderr = '';

  constructor(private readonly child: ChildProcess) {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      const r = JSON.parse(line, bigintReviver) as RpcReply;
      this.waiting.get(r.id)?.(r);
      this.waiting.delete(r.id);
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  async raw(method: string, args: unknown[], recordName?: string): Promise<RpcReply> {
    const id = this.nextId++;
    const p = new Promise<RpcReply>((resolve, reject) => {
      this.waiting.set(id, resolve);
      setTimeout(() => reject(new Error(`rpc ${method} timed out; stderr: ${this.stderr}`)), 10_000).unref();
    });
    this.child.stdin!.write(JSON.stringify({ id, method, args, record: recordName !== undefined }, bigintReplacer) + '\n');
    const r = await p;
    if (recordName !== undefined && record) {
      mkdirSync(fixtureDir, { recursive: true });
      const lines = [...(r.sent ?? []).map((h) => `> ${h}`), ...(r.received ?? []).map((h) => `< ${h}`)];
      writeFileSync(join(fixtureDir, `${recordName}.hex`), lines.join('\n') + '\n');
    }
    return r;
  }

  /** Calls a method that must succeed. */
  async call<T>(method: string, ...args: unknown[]): Promise<T> {
    const r = await this.raw(method, args);
    if (!r.ok) throw new Error(`${method} failed: ${r.error?.message}`);
    return r.result as T;
  }

  /** Calls a method that must fail; returns the error. */
  async fails(method: string, ...args: unknown[]): Promise<NonNullable<RpcReply['error']>> {
    const r = await this.raw(method, args);
    assert.equal(r.ok, false, `${method} was expected to fail`);
    return r.error!;
  }

  async close(): Promise<void> {
    this.child.stdin!.end();
    if (this.child.exitCode === null) await once(this.child, 'exit');
  }
}

interface IpLink {
  ifname: string;
  mtu: number;
  flags: string[];
  address?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  flags: string[];
}
const ipj = <T>(ns: Namespace, ...args: string[]): T => JSON.parse(ns.ip('-j', ...args) || '[]') as T;

test('Netlink API against the kernel in a namespace', { timeout: 60_000 }, async (t) => {
  if (!need(t, rootAndNetns(), binary('bridge'))) return;
  const set = new NetnsSet();
  let ops: OpsClient | undefined;
  try {
    const ns = set.add('nl');
    // Fixed MACs keep the recorded fixtures (and derived IPv6 link-local addresses) deterministic.
    ns.ip('link', 'add', 'veth0', 'address', '02:00:c6:12:00:01', 'type', 'veth', 'peer', 'name', 'veth1', 'address', '02:00:c6:12:00:02');
    // No dummy module on every kernel we run on; a second veth pair serves as a spare device.
    ns.ip('link', 'add', 'spare0', 'address', '02:00:c6:12:00:03', 'type', 'veth', 'peer', 'name', 'spare1', 'address', '02:00:c6:12:00:04');
    ops = new OpsClient(set.handle(ns.name).spawn(process.execPath, [opsScript, 'rpc'], { stdio: ['pipe', 'pipe', 'pipe'] }));
    const c = ops;

    // ---- links
    const veth0 = await c.call<Link>('getLink', 'veth0');
    const veth1 = await c.call<Link>('getLink', 'veth1');
    assert.equal(veth0.kind, 'veth');
    assert.equal(veth0.mac, '02:00:c6:12:00:01');
    assert.equal(veth0.parent, veth1.index);
    assert.deepEqual(await c.call<Link>('getLink', veth0.index), veth0);
    const names = (await c.call<Link[]>('listLinks')).map((l) => l.name).sort();
    assert.deepEqual(names, ['lo', 'spare0', 'spare1', 'veth0', 'veth1']);

    const noDev = await c.fails('getLink', 'nosuchdev');
    assert.equal(noDev.code, 'ENODEV');
    assert.equal(await c.call<Link | undefined>('findLink', 'nosuchdev'), undefined);

    await c.call('setLinkMtu', veth0.index, 1400);
    await c.call('setLinkUp', veth0.index);
    await c.call('setLinkUp', veth1.index);
    const ipVeth0 = ipj<IpLink[]>(ns, 'link', 'show', 'veth0')[0]!;
    assert.equal(ipVeth0.mtu, 1400);
    assert.ok(ipVeth0.flags.includes('UP'), JSON.stringify(ipVeth0.flags));
    assert.equal((await c.call<Link>('getLink', 'veth0')).up, true);

    const spare0 = await c.call<Link>('getLink', 'spare0');
    await c.call('setLinkUp', spare0.index);
    await c.call('setLinkDown', spare0.index);
    assert.ok(!ipj<IpLink[]>(ns, 'link', 'show', 'spare0')[0]!.flags.includes('UP'));

    // ---- addresses
    await c.call('addAddr', veth0.index, v4('198.18.0.1'), 24);
    await c.call('addAddr', veth0.index, v6('2001:db8::1'), 64, { flags: 0x02 /* IFA_F_NODAD */ });
    const ipAddrs = ipj<{ addr_info: { family: string; local: string; prefixlen: number }[] }[]>(ns, 'addr', 'show', 'dev', 'veth0')[0]!.addr_info;
    assert.ok(ipAddrs.some((a) => a.local === '198.18.0.1' && a.prefixlen === 24), JSON.stringify(ipAddrs));
    assert.ok(ipAddrs.some((a) => a.local === '2001:db8::1' && a.prefixlen === 64), JSON.stringify(ipAddrs));
    const dupAddrReply = await c.raw('addAddr', [veth0.index, v4('198.18.0.1'), 24], 'error-eexist-extack');
    assert.equal(dupAddrReply.ok, false);
    const dupAddr = dupAddrReply.error!;
    assert.equal(dupAddr.code, 'EEXIST');
    assert.equal(dupAddr.message, 'add address 198.18.0.1/24 dev veth0: EEXIST (ipv4: Address already assigned)');
    await c.call('replaceAddr', veth0.index, v4('198.18.0.1'), 24);
    const ours = await c.call<Addr[]>('listAddrs', 4, veth0.index);
    assert.deepEqual(
      ours.map((a) => [a.addr.value, a.prefixLen]),
      [[v4('198.18.0.1').value, 24]],
    );
    assert.ok((await c.call<Addr[]>('listAddrs', 6, veth0.index)).some((a) => a.addr.value === v6('2001:db8::1').value));
    await c.call('addAddr', spare0.index, v4('198.18.9.9'), 32);
    await c.call('delAddr', spare0.index, v4('198.18.9.9'), 32);
    assert.equal(ipj<{ addr_info: unknown[] }[]>(ns, 'addr', 'show', 'dev', 'spare0')[0]!.addr_info.length, 0);
    await c.raw('listAddrs', [], 'addr-dump');

    // ---- routes
    const viaRoute = { dst: net4('198.19.5.0/24'), gateway: v4('198.18.0.12'), oif: veth0.index };
    await c.call('addRoute', viaRoute);
    let ipRoutes = ipj<IpRoute[]>(ns, 'route', 'show', '198.19.5.0/24');
    assert.deepEqual([ipRoutes[0]?.gateway, ipRoutes[0]?.dev], ['198.18.0.12', 'veth0']);
    const dup = await c.raw('addRoute', [viaRoute], 'error-eexist');
    assert.equal(dup.ok, false);
    assert.equal(dup.error?.code, 'EEXIST');
    assert.equal(dup.error?.errno, 17);
    assert.equal(dup.error?.message, 'add route 198.19.5.0/24 via 198.18.0.12 dev veth0: EEXIST');
    await c.call('replaceRoute', { ...viaRoute, gateway: v4('198.18.0.13') });
    ipRoutes = ipj<IpRoute[]>(ns, 'route', 'show', '198.19.5.0/24');
    assert.equal(ipRoutes.length, 1);
    assert.equal(ipRoutes[0]?.gateway, '198.18.0.13');
    await c.call('delRoute', { dst: net4('198.19.5.0/24') });
    assert.deepEqual(ipj<IpRoute[]>(ns, 'route', 'show', '198.19.5.0/24'), []);
    const delMissing = await c.fails('delRoute', { dst: net4('198.19.5.0/24') });
    assert.equal(delMissing.code, 'ESRCH');

    // host-gw shape and a default route, then the queries the daemon uses for interface selection.
    await c.call('addRoute', { dst: net4('198.19.7.0/24'), gateway: v4('198.18.0.12'), oif: veth0.index });
    await c.call('addRoute', { dst: net4('0.0.0.0/0'), gateway: v4('198.18.0.254'), oif: veth0.index });
    assert.equal(await c.call<number>('defaultRouteInterface', 4), veth0.index);
    assert.equal(await c.call<number | undefined>('defaultRouteInterface', 6), undefined);
    const got = await c.call<RouteGetResult>('routeGet', v4('198.19.200.1'));
    assert.equal(got.oif, veth0.index);
    assert.equal(got.prefsrc?.value, v4('198.18.0.1').value);
    assert.equal(got.gateway?.value, v4('198.18.0.254').value);

    await c.call('addRoute', { dst: net6('2001:db8:5::/64'), gateway: v6('2001:db8::12'), oif: veth0.index });
    const ip6 = ipj<IpRoute[]>(ns, '-6', 'route', 'show', '2001:db8:5::/64');
    assert.deepEqual([ip6[0]?.gateway, ip6[0]?.dev], ['2001:db8::12', 'veth0']);
    const v6routes = await c.call<Route[]>('listRoutes', 6);
    assert.ok(v6routes.some((r) => r.dst.value === net6('2001:db8:5::/64').value && r.dst.prefixLen === 64 && r.gateway?.value === v6('2001:db8::12').value));

    // ---- vxlan, as flannel's vxlan backend creates flannel.1
    const vx = await c.call<Link>('addVxlanLink', {
      name: 'flannel.1',
      vni: 1,
      local: v4('198.18.0.1'),
      port: 8472,
      learning: false,
      link: veth0.index,
      mtu: 1350, // underlay veth0 is at 1400; flannel uses external MTU - 50
      mac: '02:00:c6:13:00:01',
    });
    assert.equal(vx.kind, 'vxlan');
    assert.equal(vx.mtu, 1350);
    assert.equal(vx.mac, '02:00:c6:13:00:01');
    assert.deepEqual(
      { ...vx.vxlan, local: vx.vxlan?.local?.value },
      { vni: 1, local: v4('198.18.0.1').value, port: 8472, learning: false, gbp: false, link: veth0.index, udpCsum: true, ttl: 0, ageing: 300 },
    );
    const ipVx = ipj<IpLink[]>(ns, '-d', 'link', 'show', 'flannel.1')[0]!;
    assert.equal(ipVx.linkinfo?.info_kind, 'vxlan');
    const d = ipVx.linkinfo?.info_data ?? {};
    assert.deepEqual([d['id'], d['local'], d['port'], d['learning'], d['link']], [1, '198.18.0.1', 8472, false, 'veth0']);
    const dupVx = await c.fails('addVxlanLink', { name: 'flannel.1', vni: 1, port: 8472 });
    assert.equal(dupVx.code, 'EEXIST');
    await c.call('setLinkUp', vx.index);
    await c.raw('getLink', ['flannel.1'], 'link-get-vxlan');

    const gbp = await c.call<Link>('addVxlanLink', { name: 'flannel.2', vni: 2, port: 4789, learning: true, gbp: true });
    assert.deepEqual([gbp.vxlan?.vni, gbp.vxlan?.port, gbp.vxlan?.learning, gbp.vxlan?.gbp], [2, 4789, true, true]);
    assert.equal(ipj<IpLink[]>(ns, '-d', 'link', 'show', 'flannel.2')[0]!.linkinfo?.info_data?.['gbp'], true);
    await c.raw('listLinks', [], 'link-dump');
    await c.call('deleteLink', gbp.index);
    assert.throws(() => ns.ip('link', 'show', 'flannel.2'));

    // IPv6 flavour (flannel-v6.<VNI>): LOCAL6, a v6 onlink route and a v6 PERMANENT neighbour.
    const vx6 = await c.call<Link>('addVxlanLink', { name: 'flannel-v6.1', vni: 1, local: v6('2001:db8::1'), port: 8472, learning: false, link: veth0.index });
    assert.equal(vx6.vxlan?.local?.value, v6('2001:db8::1').value);
    assert.equal(ipj<IpLink[]>(ns, '-d', 'link', 'show', 'flannel-v6.1')[0]!.linkinfo?.info_data?.['local6'], '2001:db8::1');
    await c.call('setLinkUp', vx6.index);
    await c.call('replaceNeigh', { index: vx6.index, dst: v6('2001:db8:6::'), lladdr: '02:00:c6:13:00:66' });
    assert.deepEqual(ipj<{ dst: string; lladdr: string; state: string[] }[]>(ns, '-6', 'neigh', 'show', 'dev', 'flannel-v6.1'), [
      { dst: '2001:db8:6::', lladdr: '02:00:c6:13:00:66', state: ['PERMANENT'] },
    ]);
    await c.call('addRoute', { dst: net6('2001:db8:6::/64'), gateway: v6('2001:db8:6::'), oif: vx6.index, onlink: true });
    const ip6Onlink = ipj<IpRoute[]>(ns, '-6', 'route', 'show', '2001:db8:6::/64')[0];
    assert.deepEqual([ip6Onlink?.gateway, ip6Onlink?.dev, ip6Onlink?.flags], ['2001:db8:6::', 'flannel-v6.1', ['onlink']]);
    const got6 = await c.call<RouteGetResult>('routeGet', v6('2001:db8:6::5'));
    assert.equal(got6.oif, vx6.index);
    await c.call('deleteLink', vx6.index);
    assert.deepEqual(ipj<IpRoute[]>(ns, '-6', 'route', 'show', '2001:db8:6::/64'), []);

    // Per remote lease: route via the subnet address onlink, PERMANENT neighbour, self FDB entry.
    await c.call('addAddr', vx.index, v4('198.19.1.0'), 32);
    const onlink = { dst: net4('198.19.6.0/24'), gateway: v4('198.19.6.0'), oif: vx.index, onlink: true };
    await c.call('addRoute', onlink);
    const ipOnlink = ipj<IpRoute[]>(ns, 'route', 'show', '198.19.6.0/24')[0];
    assert.deepEqual([ipOnlink?.gateway, ipOnlink?.dev, ipOnlink?.flags], ['198.19.6.0', 'flannel.1', ['onlink']]);
    const listed = (await c.call<Route[]>('listRoutes', 4)).find((r) => r.dst.value === net4('198.19.6.0/24').value);
    assert.equal(listed?.onlink, true);
    assert.equal(listed?.oif, vx.index);
    assert.equal(await c.raw('addRoute', [onlink]).then((r) => r.error?.code), 'EEXIST');
    await c.raw('listRoutes', [4], 'route-dump');

    const neigh = { index: vx.index, dst: v4('198.19.6.0'), lladdr: '02:00:c6:13:00:06' };
    await c.call('replaceNeigh', neigh);
    await c.call('replaceNeigh', neigh); // idempotent, as flannel re-applies it
    const ipNeigh = ipj<{ dst: string; lladdr: string; state: string[] }[]>(ns, 'neigh', 'show', 'dev', 'flannel.1');
    assert.deepEqual(ipNeigh, [{ dst: '198.19.6.0', lladdr: '02:00:c6:13:00:06', state: ['PERMANENT'] }]);
    assert.equal((await c.fails('addNeigh', neigh)).code, 'EEXIST');
    await c.call('addNeigh', { index: vx.index, dst: v4('198.19.8.0'), lladdr: '02:00:c6:13:00:08' });
    const neighs = await c.call<Neigh[]>('listNeighs', 4, vx.index);
    assert.deepEqual(
      neighs.map((n) => [n.dst?.value, n.lladdr, n.state]).sort(),
      [
        [v4('198.19.6.0').value, '02:00:c6:13:00:06', 0x80],
        [v4('198.19.8.0').value, '02:00:c6:13:00:08', 0x80],
      ],
    );
    await c.raw('listNeighs', [4], 'neigh-dump');
    await c.call('delNeigh', vx.index, v4('198.19.8.0'));
    assert.equal(ipj<unknown[]>(ns, 'neigh', 'show', 'dev', 'flannel.1').length, 1);

    interface BridgeFdb {
      mac: string;
      dst?: string;
      flags?: string[];
      state?: string;
    }
    const fdbOf = (): BridgeFdb[] => JSON.parse(ns.exec('bridge', ['-j', 'fdb', 'show', 'dev', 'flannel.1']) || '[]') as BridgeFdb[];
    const fdb = { index: vx.index, lladdr: '02:00:c6:13:00:06', dst: v4('198.18.0.12') };
    await c.call('replaceFdb', fdb);
    let entries = fdbOf().filter((e) => e.mac === '02:00:c6:13:00:06');
    assert.deepEqual(
      entries.map((e) => [e.dst, e.flags, e.state]),
      [['198.18.0.12', ['self'], 'permanent']],
    );
    // `bridge fdb append` semantics: several remotes per entry exist only for the all-zeros (flood)
    // MAC; for a unicast MAC the kernel keeps the existing remote, so replaceFdb is how flannel moves it.
    const flood = { index: vx.index, lladdr: '00:00:00:00:00:00', dst: v4('198.18.0.14') };
    await c.call('addFdb', flood);
    await c.call('addFdb', { ...flood, dst: v4('198.18.0.15') });
    await c.call('addFdb', { ...flood, dst: v4('198.18.0.15') }); // appending an existing remote is not an error
    entries = fdbOf().filter((e) => e.mac === '00:00:00:00:00:00');
    assert.deepEqual(entries.map((e) => e.dst).sort(), ['198.18.0.14', '198.18.0.15']);
    await c.call('addFdb', { ...fdb, dst: v4('198.18.0.99') });
    entries = fdbOf().filter((e) => e.mac === '02:00:c6:13:00:06');
    assert.deepEqual(entries.map((e) => e.dst), ['198.18.0.12']);
    const listedFdb = await c.call<Neigh[]>('listFdb', vx.index);
    assert.deepEqual(
      listedFdb
        .filter((n) => n.lladdr !== undefined && n.dst !== undefined)
        .map((n) => [n.lladdr, n.dst?.value, n.state, n.flags & 0x02])
        .sort(),
      [
        ['00:00:00:00:00:00', v4('198.18.0.14').value, 0x80, 0x02],
        ['00:00:00:00:00:00', v4('198.18.0.15').value, 0x80, 0x02],
        ['02:00:c6:13:00:06', v4('198.18.0.12').value, 0x80, 0x02],
      ],
    );
    await c.raw('listFdb', [vx.index], 'fdb-dump');
    await c.call('delFdb', flood);
    assert.deepEqual(fdbOf().filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst), ['198.18.0.15']);
    await c.call('replaceFdb', { ...fdb, dst: v4('198.18.0.13') });
    entries = fdbOf().filter((e) => e.mac === '02:00:c6:13:00:06');
    assert.deepEqual(
      entries.map((e) => e.dst),
      ['198.18.0.13'],
    );
    await c.call('delFdb', { ...fdb, dst: v4('198.18.0.13') });
    assert.equal(fdbOf().filter((e) => e.mac === '02:00:c6:13:00:06').length, 0);

    await c.call('delRoute', onlink);
    await c.call('setLinkDown', vx.index);
    await c.call('deleteLink', vx.index);
    assert.throws(() => ns.ip('link', 'show', 'flannel.1'));
  } finally {
    await ops?.close().catch(() => undefined);
    await set.destroy();
  }
});

test('link notifications (RTMGRP_LINK) arrive through the native subscription thread', { timeout: 30_000 }, async (t) => {
  if (!need(t, rootAndNetns())) return;
  const set = new NetnsSet();
  let ops: OpsClient | undefined;
  try {
    const ns = set.add('nw');
    ops = new OpsClient(set.handle(ns.name).spawn(process.execPath, [opsScript, 'rpc'], { stdio: ['pipe', 'pipe', 'pipe'] }));
    const c = ops;
    await c.call('startWatch');
    ns.ip('link', 'add', 'w0', 'type', 'veth', 'peer', 'name', 'w1');
    ns.ip('link', 'set', 'w0', 'mtu', '1300');
    ns.ip('link', 'del', 'w0');
    type Ev = { kind: string; link?: Link; reason?: string };
    const seen: Ev[] = [];
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !seen.some((e) => e.kind === 'del' && e.link?.name === 'w0')) {
      seen.push(...(await c.call<Ev[]>('takeEvents')));
      await sleep(50);
    }
    const w0 = seen.filter((e) => e.link?.name === 'w0');
    assert.ok(w0.some((e) => e.kind === 'new' && e.link?.kind === 'veth'), JSON.stringify(seen, bigintReplacer));
    assert.ok(w0.some((e) => e.kind === 'new' && e.link?.mtu === 1300));
    assert.equal(w0.at(-1)?.kind, 'del');
    assert.ok(!seen.some((e) => e.kind === 'resync'));
    await c.call('stopWatch');
    ns.ip('link', 'add', 'w2', 'type', 'veth', 'peer', 'name', 'w3');
    await sleep(200);
    assert.deepEqual(await c.call<Ev[]>('takeEvents'), []);
  } finally {
    await ops?.close().catch(() => undefined);
    await set.destroy();
  }
});
