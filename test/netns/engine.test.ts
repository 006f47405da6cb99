// The native engine between real network namespaces: two overlay nodes on an underlay bridge, each
// running test/fixtures/engine-node.js. Underlay 198.18.0.0/24 + 2001:db8:1::/64; overlay
// 198.19.0.0/16 (node N owns 198.19.N.0/24) + 2001:db8:100::/56 (node N owns 2001:db8:100:N::/64).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { NetnsSet, type Namespace } from '../../src/lab/netns.js';
import { DEFAULT_REPLY_POLL_US, type EngineStats, type PeerRoute } from '../../src/native/engine.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { ipv4, ipv6, l4Checksum, udp, withL4Checksum } from '../helpers/packets.js';
import { echoes, firstFailure, summary } from '../helpers/echo.js';
import type { NodeConfig } from '../fixtures/engine-node.js';

const FIXTURES = join(process.cwd(), 'dist', 'test', 'fixtures');
const PORT = 8285;

/** A line-oriented JSON child process. */
class JsonChild {
  private readonly lines: Array<Record<string, unknown>> = [];
  private waiters: Array<() => void> = [];
  stderr = '';
  constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      try {
        this.lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        this.lines.push({ event: 'text', text: l });
      }
      for (const w of this.waiters.splice(0)) w();
    });
    proc.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    proc.once('exit', () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }
  /** Removes and returns the first line matching pred, waiting up to ms. */
  async take(pred: (o: Record<string, unknown>) => boolean, ms = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.lines.findIndex(pred);
      if (i >= 0) return this.lines.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0 || this.proc.exitCode !== null) {
        throw new Error(`timed out waiting for output (exit ${this.proc.exitCode}); stderr: ${this.stderr}`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  all(): Array<Record<string, unknown>> {
    return this.lines;
  }
}

interface Node {
  ns: Namespace;
  child: JsonChild;
  tun: string;
  stats(): Promise<EngineStats>;
}

/** Whether a TCP listener on `port` shows up in `ns`: a fixed 500 ms after spawning a server was not always enough on a loaded machine. */
const tcpListening = (ns: Namespace, port: number): Promise<boolean> => waitFor(async () => ns.exec('ss', ['-Hltn', `sport = :${port}`]).includes(`:${port}`), 10_000);

function sh(ns: Namespace, cmd: string, args: string[], timeoutMs = 20_000): { status: number | null; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns.name, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

function delta(a: EngineStats, b: EngineStats, key: keyof EngineStats['drops']): number {
  return b.drops[key] - a.drops[key];
}

async function waitFor(fn: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return fn();
}

const peersFor = (self: number): PeerRoute[] => {
  const out: PeerRoute[] = [];
  for (const n of [1, 2]) {
    if (n === self) continue;
    out.push({ subnet: `198.19.${n}.0/24`, publicIP: `198.18.0.1${n}`, port: PORT });
    out.push({ subnet: `2001:db8:100:${n}::/64`, publicIP: `2001:db8:1::1${n}`, port: PORT });
  }
  // n1 only: a "stock" peer that is just a UDP listener on the underlay host, to capture the wire
  // format. (n2 must not know 198.18.0.99, which plays the unknown underlay host there.)
  if (self === 1) out.push({ subnet: '198.19.3.0/24', publicIP: '198.18.0.99', port: PORT });
  return out;
};

/** The underlay bridge (198.18.0.99 on it) and two engine nodes on it, with extra engine options. */
async function startNodes(set: NetnsSet, extra: Partial<NodeConfig> = {}): Promise<{ ul: Namespace; nodes: Node[] }> {
  const ul = set.add('ul');
  ul.ip('link', 'add', 'br0', 'type', 'bridge');
  ul.ip('link', 'set', 'br0', 'up');
  ul.ip('addr', 'add', '198.18.0.99/24', 'dev', 'br0');
  ul.ip('-6', 'addr', 'add', '2001:db8:1::99/64', 'dev', 'br0', 'nodad');
  const nodes: Node[] = [];
  for (const n of [1, 2]) {
    const ns = set.add(`n${n}`);
    ns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `v${n}`, 'netns', ul.name);
    ul.ip('link', 'set', `v${n}`, 'master', 'br0', 'up');
    ns.ip('addr', 'add', `198.18.0.1${n}/24`, 'dev', 'eth0');
    ns.ip('-6', 'addr', 'add', `2001:db8:1::1${n}/64`, 'dev', 'eth0', 'nodad');
    ns.ip('link', 'set', 'eth0', 'up');
    const cfg: NodeConfig = {
      bindV4: `198.18.0.1${n}`,
      bindV6: `2001:db8:1::1${n}`,
      port: PORT,
      tunAddrs: [`198.19.${n}.0/32`, `2001:db8:100:${n}::1/128`],
      mtu: 1472,
      routes: ['198.19.0.0/16', '2001:db8:100::/56'],
      peers: peersFor(n),
      ...extra,
    };
    const proc = ns.spawn(process.execPath, [join(FIXTURES, 'engine-node.js'), JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const child = new JsonChild(proc);
    const ready = await child.take((o) => o.event === 'ready');
    nodes.push({
      ns,
      child,
      tun: String(ready.tunName),
      stats: async () => {
        proc.stdin!.write('stats\n');
        return (await child.take((o) => o.event === 'stats')).stats as EngineStats;
      },
    });
  }
  return { ul, nodes };
}

describe('native engine between namespaces', suiteNeeds(rootAndNetns()), () => {
  const set = new NetnsSet();
  let ul: Namespace;
  const nodes: Node[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'flannelts-engine-'));

  before(async () => {
    if (!rootAndNetns().ok) return;
    const pair = await startNodes(set);
    ul = pair.ul;
    nodes.push(...pair.nodes);
  });

  after(async () => {
    await set.destroy();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('TUN names come from the flannel%d pattern', (t) => {
    if (!need(t, rootAndNetns())) return;
    for (const n of nodes) assert.match(n.tun, /^flannel\d+$/);
  });

  test('ping both ways over the overlay, IPv4 and IPv6', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [n1, n2] = nodes as [Node, Node];
    for (const [from, to] of [
      [n1, '198.19.2.0'],
      [n2, '198.19.1.0'],
      [n1, '2001:db8:100:2::1'],
      [n2, '2001:db8:100:1::1'],
    ] as const) {
      const r = await echoes(from.ns, to, { count: 3, intervalMs: 200, timeoutMs: 2000 });
      assert.equal(r.received, 3, `ping ${to} from ${from.ns.name}: ${summary(r)}`);
    }
  });

  test('per-peer and total counters follow the traffic', async (t) => {
    // The traffic counted is the previous test's pings.
    if (!need(t, rootAndNetns())) return;
    const s = await nodes[0]!.stats();
    const p2 = s.peers.find((p) => p.subnet === '198.19.2.0/24');
    assert.ok(p2 && p2.tx.packets >= 3 && p2.rx.packets >= 3, JSON.stringify(p2));
    const p2v6 = s.peers.find((p) => p.subnet === '2001:db8:100:2::/64');
    assert.ok(p2v6 && p2v6.tx.packets >= 3 && p2v6.rx.packets >= 3, JSON.stringify(p2v6));
    assert.ok(s.tx.packets >= 6 && s.rx.packets >= 6 && s.tx.bytes > 0);
  });

  test('TCP transfer over the overlay arrives intact (v4 and v6)', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [n1, n2] = nodes as [Node, Node];
    for (const [addr, port] of [
      ['198.19.2.0', 5001],
      ['2001:db8:100:2::1', 5002],
    ] as const) {
      const srv = new JsonChild(n2.ns.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'tcp-server', addr, String(port)]));
      await srv.take((o) => o.event === 'listening');
      const cli = new JsonChild(n1.ns.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'tcp-client', addr, String(port), String(8 << 20)]));
      const done = await cli.take((o) => o.event === 'done', 30_000);
      assert.equal(done.ok, true, JSON.stringify(done));
    }
  });

  test('an underlay MTU below the segments: GSO sends fall back to one datagram per segment, fragmented by the kernel; TCP arrives intact', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [n1, n2] = nodes as [Node, Node];
    const before = await n1.stats();
    const counter = (name: string): number => Number(new RegExp(`${name}\\s+(\\d+)`).exec(n1.ns.exec('nstat', ['-az', name]))?.[1] ?? NaN);
    const frags = (): number => counter('IpFragCreates');
    const fragsBefore = frags();
    const retransBefore = counter('TcpRetransSegs');
    // flannel0 keeps its 1472-byte MTU, so the segments (1500 bytes with IP + UDP) no longer fit a
    // UDP_SEGMENT send (EINVAL); each is resent alone and the kernel fragments it, as for stock flannel.
    n1.ns.ip('link', 'set', 'eth0', 'mtu', '1300');
    try {
      const srv = new JsonChild(n2.ns.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'tcp-server', '198.19.2.0', '5003']));
      await srv.take((o) => o.event === 'listening');
      const cli = new JsonChild(n1.ns.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'tcp-client', '198.19.2.0', '5003', String(8 << 20)]));
      const done = await cli.take((o) => o.event === 'done', 30_000);
      assert.equal(done.ok, true, JSON.stringify(done));
    } finally {
      n1.ns.ip('link', 'set', 'eth0', 'mtu', '1500');
    }
    const after = await n1.stats();
    assert.ok(frags() - fragsBefore >= 1000, `the per-segment resends were fragmented: ${frags() - fragsBefore} fragments`);
    // Every segment went out once, in order: TCP had nothing to repair (a resend of the wrong segments
    // still completes the transfer, through retransmissions).
    const retrans = counter('TcpRetransSegs') - retransBefore;
    t.diagnostic(`${frags() - fragsBefore} fragments, ${retrans} TCP retransmissions`);
    assert.ok(retrans <= 20, `${retrans} TCP retransmissions`);
    assert.ok(after.offload.gsoPackets - before.offload.gsoPackets >= 10, 'the transfer came from the TUN as super-packets');
    assert.equal(after.offloads.udpGso, true, 'EINVAL is not EIO: UDP_SEGMENT stays on for the next sends');
    assert.equal(after.drops.socket_send_error, before.drops.socket_send_error, "nothing lost");
  });

  test('the datagram on the underlay is exactly the inner packet with TTL one less', async (t) => {
    if (!need(t, rootAndNetns(), binary('tcpdump'))) return;
    const n1 = nodes[0]!;
    const listener = new JsonChild(ul.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'listen', '198.18.0.99', String(PORT)]));
    await listener.take((o) => o.event === 'listening');
    const pcap = join(tmp, 'tun.pcap');
    const dump = new JsonChild(
      n1.ns.spawn('tcpdump', ['-i', n1.tun, '-n', '-U', '-c', '1', '-w', pcap, 'udp and dst host 198.19.3.7'], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    await waitFor(async () => dump.stderr.includes('listening on'));
    const data = Buffer.from('flannel-udp wire check');
    const sender = new JsonChild(n1.ns.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'send', '198.19.1.0', '198.19.3.7', '9999', data.toString('hex')]));
    await sender.take((o) => o.event === 'sent');
    const got = await listener.take((o) => typeof o.hex === 'string');
    await new Promise<void>((r) => (dump.proc.exitCode !== null ? r() : dump.proc.once('exit', () => r())));
    assert.equal(got.from, '198.18.0.11');
    assert.equal(got.port, PORT, 'sent from the bound engine port');

    const inner = innerFromPcap(readFileSync(pcap));
    const wire = Buffer.from(String(got.hex), 'hex');
    const expected = Buffer.from(inner);
    expected[8] = inner[8]! - 1;
    expected.writeUInt16BE(0, 10);
    expected.writeUInt16BE(ipv4Checksum(expected.subarray(0, 20)), 10);
    // tcpdump on the TUN sees the kernel's CHECKSUM_PARTIAL packet (pseudo-header sum in the UDP
    // checksum field) when the TUN has checksum offload; the engine completes it before the wire,
    // because a stock flanneld peer forwards it as is.
    withL4Checksum(expected);
    assert.deepEqual(wire, expected);
    assert.equal(wire.readUInt16BE(26), l4Checksum(wire), 'the UDP checksum on the wire is complete');
    assert.equal(wire.subarray(wire.length - data.length).toString(), data.toString());
  });

  test('no route: the sender gets ICMP net unreachable (v4) / no route (v6) and no_route counts', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const n1 = nodes[0]!;
    const before = await n1.stats();
    const r4 = await echoes(n1.ns, '198.19.200.1', { count: 1, timeoutMs: 2000 });
    assert.equal(r4.received, 0);
    assert.match(firstFailure(r4), /^ICMP destination unreachable \(net unreachable\) from /);
    const r6 = await echoes(n1.ns, '2001:db8:100:c8::1', { count: 1, timeoutMs: 2000 });
    assert.equal(r6.received, 0);
    assert.match(firstFailure(r6), /^ICMPv6 destination unreachable \(no route to destination\) from /);
    const after = await n1.stats();
    assert.ok(delta(before, after, 'no_route') >= 2);
  });

  test('spoofed datagrams are dropped and counted: unknown outer source, inner source outside the peer subnet', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [n1, n2] = nodes as [Node, Node];
    const before = await n2.stats();
    const toN2 = ipv4({ src: '198.19.1.5', dst: '198.19.2.0', proto: 17, payload: udp(1, 7, Buffer.from('spoof')) });
    const toN2v6 = ipv6({ src: '2001:db8:100:1::5', dst: '2001:db8:100:2::1', payload: udp(1, 7, Buffer.from('spoof')) });
    // From the underlay host: a valid inner packet from n1's subnet, but the outer source is no peer.
    for (const [bind, dst, pkt] of [
      ['198.18.0.99', '198.18.0.12', toN2],
      ['2001:db8:1::99', '2001:db8:1::12', toN2v6],
    ] as const) {
      const c = new JsonChild(ul.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'send', bind, dst, String(PORT), pkt.toString('hex')]));
      await c.take((o) => o.event === 'sent');
    }
    // From n1's real public address, but claiming a source inside n2's own subnet / outside any.
    const forged = [
      ipv4({ src: '198.19.2.77', dst: '198.19.2.0', proto: 17, payload: udp(1, 7, Buffer.from('x')) }),
      ipv4({ src: '198.19.99.1', dst: '198.19.2.0', proto: 17, payload: udp(1, 7, Buffer.from('x')) }),
    ];
    const c = new JsonChild(
      n1.ns.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'send', '198.18.0.11', '198.18.0.12', String(PORT), forged.map((b) => b.toString('hex')).join(',')]),
    );
    await c.take((o) => o.event === 'sent');
    let after = before;
    await waitFor(async () => {
      after = await n2.stats();
      return delta(before, after, 'unknown_peer') >= 2 && delta(before, after, 'spoofed_source') >= 2;
    });
    t.diagnostic(`before ${JSON.stringify(before.drops)} after ${JSON.stringify(after.drops)}`);
    assert.equal(delta(before, after, 'unknown_peer'), 2);
    assert.equal(delta(before, after, 'spoofed_source'), 2);
    assert.equal(after.rx.packets, before.rx.packets, 'nothing reached the TUN');
  });

  test('TTL 1 arriving from a real peer is dropped as ttl_expired, not written to the TUN', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [n1, n2] = nodes as [Node, Node];
    const before = await n2.stats();
    const pkt = ipv4({ src: '198.19.1.0', dst: '198.19.2.0', proto: 17, ttl: 1, payload: udp(1, 7, Buffer.from('ttl')) });
    const pkt6 = ipv6({ src: '2001:db8:100:1::1', dst: '2001:db8:100:2::1', hop: 1, payload: udp(1, 7, Buffer.from('ttl')) });
    for (const [bind, dst, p] of [
      ['198.18.0.11', '198.18.0.12', pkt],
      ['2001:db8:1::11', '2001:db8:1::12', pkt6],
    ] as const) {
      const c = new JsonChild(n1.ns.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'send', bind, dst, String(PORT), p.toString('hex')]));
      await c.take((o) => o.event === 'sent');
    }
    let after = before;
    await waitFor(async () => {
      after = await n2.stats();
      return delta(before, after, 'ttl_expired') >= 2;
    });
    assert.equal(delta(before, after, 'ttl_expired'), 2);
    assert.equal(after.rx.packets, before.rx.packets);
  });

  test('thousands of garbage datagrams: counted, no crash, real traffic still flows', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [n1, n2] = nodes as [Node, Node];
    const before = await n2.stats();
    const valid = ipv4({ src: '198.19.1.9', dst: '198.19.2.0', proto: 17, payload: udp(1, 9, Buffer.alloc(40, 1)) });
    const COUNT = 4000;
    const g = new JsonChild(
      n1.ns.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'garbage', '198.18.0.11', '198.18.0.12', String(PORT), String(COUNT), '4242', valid.toString('hex')]),
    );
    await g.take((o) => o.event === 'sent', 30_000);
    // Receive-side outcomes only: no_route counts what n2's own kernel sends out of the TUN (ICMP errors
    // answering delivered garbage from unroutable sources, as many as its rate limit lets through).
    const accounted = (s: EngineStats): number =>
      (Object.keys(s.drops) as Array<keyof EngineStats['drops']>).filter((k) => k !== 'no_route').reduce((acc, k) => acc + delta(before, s, k), 0) + (s.rx.packets - before.rx.packets);
    let after = before;
    await waitFor(async () => {
      after = await n2.stats();
      return accounted(after) >= COUNT;
    }, 10_000);
    t.diagnostic(`drops: ${JSON.stringify(after.drops)}`);
    assert.equal(accounted(after), COUNT, 'every datagram is either delivered or dropped with a reason');
    assert.ok(delta(before, after, 'malformed') >= COUNT / 2, `malformed ${delta(before, after, 'malformed')}`);
    assert.equal(n2.child.proc.exitCode, null, 'engine process alive');
    const r = await echoes(n1.ns, '198.19.2.0', { count: 2, intervalMs: 200, timeoutMs: 2000 });
    assert.ok(r.received >= 1, summary(r));
  });

  test('peer table swap while traffic flows keeps counters for unchanged subnets', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const n1 = nodes[0]!;
    const before = await n1.stats();
    const p = before.peers.find((x) => x.subnet === '198.19.2.0/24')!;
    for (let i = 0; i < 50; i++) {
      n1.child.proc.stdin!.write(`peers ${JSON.stringify(peersFor(1))}\n`);
      await n1.child.take((o) => o.event === 'peers-ok');
    }
    const after = await n1.stats();
    const q = after.peers.find((x) => x.subnet === '198.19.2.0/24')!;
    assert.ok(q.tx.packets >= p.tx.packets && q.tx.packets > 0);
    assert.equal((await echoes(n1.ns, '198.19.2.0', { count: 1, timeoutMs: 2000 })).received, 1);
  });

  test('iperf3 TCP through the TUN; the receiving engine does not reply-poll after the ACKs of a stream', async (t) => {
    if (!need(t, rootAndNetns(), binary('iperf3'))) return;
    const [n1, n2] = nodes as [Node, Node];
    const before = await n2.stats();
    const srv = n2.ns.spawn('iperf3', ['-s', '-1', '-B', '198.19.2.0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    assert.ok(await tcpListening(n2.ns, 5201), 'iperf3 server listening');
    const r = sh(n1.ns, 'iperf3', ['-c', '198.19.2.0', '-t', '5', '-J'], 30_000);
    srv.kill('SIGTERM');
    assert.equal(r.status, 0, r.out.slice(0, 500));
    const j = JSON.parse(r.out.slice(r.out.indexOf('{'))) as { end: { sum_received: { bits_per_second: number } } };
    t.diagnostic(`iperf3 TCP 1 stream: ${(j.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s (informational)`);
    // n2's sends are small batches of ACKs, each followed by more data within microseconds: polling
    // for it would only take CPU from the stream it is receiving, so those sends skip the poll (a few
    // still poll: the stream's first and last batches, a small batch in between).
    const after = await n2.stats();
    const polled = after.replyPoll.hits - before.replyPoll.hits + (after.replyPoll.misses - before.replyPoll.misses);
    const skipped = after.replyPoll.skipped - before.replyPoll.skipped;
    t.diagnostic(`receiver: ${polled} polls, ${skipped} skipped`);
    assert.ok(skipped >= 100 && skipped >= 3 * polled, `the receiver skipped polling after its ACKs: ${polled} polls, ${skipped} skipped`);
  });

  test('peer tables swapped hundreds of times under TCP load: no crash, counters of kept peers survive', async (t) => {
    if (!need(t, rootAndNetns(), binary('iperf3'))) return;
    const [n1, n2] = nodes as [Node, Node];
    const before = (await n1.stats()).peers.find((x) => x.subnet === '198.19.2.0/24')!;
    const srv = n2.ns.spawn('iperf3', ['-s', '-1', '-B', '198.19.2.0', '-p', '5202'], { stdio: ['ignore', 'pipe', 'pipe'] });
    assert.ok(await tcpListening(n2.ns, 5202), 'iperf3 server listening');
    const cli = n1.ns.spawn('iperf3', ['-c', '198.19.2.0', '-p', '5202', '-t', '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => cli.once('exit', (c) => r(c)));
    let running = true;
    void exited.then(() => (running = false));
    let swaps = 0;
    // Alternate between the base table and one with an extra peer, on both sides of the transfer.
    const extra: PeerRoute = { subnet: '198.19.50.0/24', publicIP: '198.18.0.50', port: PORT };
    while (running) {
      for (const [n, self] of [
        [n1, 1],
        [n2, 2],
      ] as const) {
        const table = swaps % 2 === 0 ? [...peersFor(self), extra] : peersFor(self);
        n.child.proc.stdin!.write(`peers ${JSON.stringify(table)}\n`);
        await n.child.take((o) => o.event === 'peers-ok');
      }
      swaps++;
    }
    srv.kill('SIGTERM');
    assert.equal(await exited, 0, 'iperf3 completed');
    t.diagnostic(`${swaps} swaps per node during the transfer`);
    assert.ok(swaps >= 50, `only ${swaps} swaps`);
    const s = await n1.stats();
    const after = s.peers.find((x) => x.subnet === '198.19.2.0/24')!;
    assert.ok(after.tx.bytes - before.tx.bytes > 10_000_000, 'counters kept across swaps include the transfer');
    assert.equal(n1.child.proc.exitCode, null);
    assert.equal(n2.child.proc.exitCode, null);
  });

  test('reply polling: the sending thread takes the answer to a ping; unanswered sends shrink the window; an answer restores it', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [n1, n2] = nodes as [Node, Node];
    const poll = (a: EngineStats, b: EngineStats) => ({
      hits: b.replyPoll.hits - a.replyPoll.hits,
      misses: b.replyPoll.misses - a.replyPoll.misses,
      skipped: b.replyPoll.skipped - a.replyPoll.skipped,
    });
    const s0 = await n1.stats();
    assert.equal(s0.replyPoll.windowUs, DEFAULT_REPLY_POLL_US, 'on by default');
    // Answered: n2's kernel answers inside n2's TUN write, so the reply is back within microseconds.
    // (Earlier tests' one-way traffic may have shrunk the window: a probe within 64 sends restores it.)
    let r = await echoes(n1.ns, '198.19.2.0', { count: 200, intervalMs: 5, timeoutMs: 1000 });
    assert.equal(r.received, 200, summary(r));
    const s1 = await n1.stats();
    const answered = poll(s0, s1);
    // Each TUN batch of 1-4 echo requests is one small send (a busy machine may queue two at once).
    assert.ok(answered.hits + answered.misses + answered.skipped >= 100, `the echo requests were small sends: ${JSON.stringify(answered)}`);
    // How many replies come back inside the window depends on the machine's load (a reply later than
    // 300 us is a miss, and three in a row shrink the window), so only that some do is asserted.
    assert.ok(answered.hits >= 1, `replies taken by the polling TX thread: ${JSON.stringify(answered)}`);
    // Unanswered: a blackhole route on n2 swallows the requests.
    n2.ns.ip('route', 'add', 'blackhole', '198.19.2.77/32');
    try {
      r = await echoes(n1.ns, '198.19.2.77', { count: 200, intervalMs: 5, timeoutMs: 1000 });
      assert.deepEqual([r.sent, r.received], [200, 0], summary(r));
    } finally {
      n2.ns.ip('route', 'del', 'blackhole', '198.19.2.77/32');
    }
    const s2 = await n1.stats();
    const oneWay = poll(s1, s2);
    assert.ok(oneWay.hits + oneWay.misses + oneWay.skipped >= 100, JSON.stringify(oneWay));
    // 3 polls each at 300, 150, 75, 37, 18 us, then a probe every 64th send: about 18 polls for 200 sends.
    assert.ok(oneWay.misses <= 40 && oneWay.skipped >= 120, `the window shrank: ${JSON.stringify(oneWay)}`);
    // Answers again: the shrunken window is probed at full size every 64th send (and a probe that
    // catches a reply brings the full window back, as phase one showed).
    r = await echoes(n1.ns, '198.19.2.0', { count: 150, intervalMs: 5, timeoutMs: 1000 });
    assert.equal(r.received, 150, summary(r));
    const s3 = await n1.stats();
    const back = poll(s2, s3);
    assert.ok(back.hits + back.misses >= 2, `probed again: ${JSON.stringify(back)}`);
    // Pings never need a second data-plane thread: whatever the bulk tests before split, it merged back.
    assert.equal(s3.threads.mode, 0, 'automatic by default');
    assert.equal(s3.threads.current, 1, JSON.stringify(s3.threads));
    assert.equal(s3.threads.splits, s3.threads.merges, JSON.stringify(s3.threads));
  });

  test('SIGTERM closes the engine cleanly', async (t) => {
    if (!need(t, rootAndNetns())) return;
    for (const n of nodes) {
      n.child.proc.kill('SIGTERM');
      await n.child.take((o) => o.event === 'closed');
      const code = await new Promise<number | null>((r) => (n.child.proc.exitCode !== null ? r(n.child.proc.exitCode) : n.child.proc.once('exit', (c) => r(c))));
      assert.equal(code, 0);
      assert.doesNotMatch(n.ns.ip('link', 'show'), /flannel\d/, 'TUN removed with its fd');
    }
  });
});

/** Both directions at once: a content-checked TCP transfer from each node to the other. */
async function transferBothWays(nodes: Node[], bytes: number): Promise<void> {
  const [n1, n2] = nodes as [Node, Node];
  const servers = [
    new JsonChild(n2.ns.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'tcp-server', '198.19.2.0', '5101'])),
    new JsonChild(n1.ns.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'tcp-server', '198.19.1.0', '5102'])),
  ];
  for (const srv of servers) await srv.take((o) => o.event === 'listening');
  const clients = [
    new JsonChild(n1.ns.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'tcp-client', '198.19.2.0', '5101', String(bytes)])),
    new JsonChild(n2.ns.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'tcp-client', '198.19.1.0', '5102', String(bytes)])),
  ];
  const done = await Promise.all(clients.map((c) => c.take((o) => o.event === 'done', 60_000)));
  for (const d of done) assert.equal(d.ok, true, JSON.stringify(d));
}

describe('engine thread mode', suiteNeeds(rootAndNetns()), () => {
  const set = new NetnsSet();
  after(async () => {
    await set.destroy();
  });

  // A threshold of 1 % makes any two-way transfer split the directions, so the switch itself (the TUN
  // handed from one thread to the other and back, with packets in flight) is what gets tested.
  test('automatic: a two-way transfer splits the directions onto two threads, intact; idle merges them back', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const { nodes } = await startNodes(set, { splitAtPercent: 1 });
    const [n1, n2] = nodes as [Node, Node];
    for (const n of nodes) assert.deepEqual((await n.stats()).threads, { mode: 0, current: 1, splits: 0, merges: 0 });
    await transferBothWays(nodes, 48 << 20);
    for (const n of nodes) {
      const th = (await n.stats()).threads;
      assert.ok(th.splits >= 1, `${n.ns.name} split under two-way load: ${JSON.stringify(th)}`);
    }
    // Idle for more than a window; then light traffic lets each engine look at the mode again.
    await new Promise((r) => setTimeout(r, 300));
    const r = await echoes(n1.ns, '198.19.2.0', { count: 5, intervalMs: 200, timeoutMs: 1000 });
    assert.equal(r.received, 5, summary(r));
    for (const n of [n1, n2]) {
      const th = (await n.stats()).threads;
      assert.equal(th.current, 1, `${n.ns.name} back on one thread: ${JSON.stringify(th)}`);
      assert.ok(th.merges >= 1 && th.merges === th.splits, JSON.stringify(th));
    }
  });

  test('fixed: -udp-threads 2 and 1 carry both directions and never switch', async (t) => {
    if (!need(t, rootAndNetns())) return;
    for (const dataThreads of [2, 1] as const) {
      const sub = new NetnsSet();
      try {
        const { nodes } = await startNodes(sub, { dataThreads });
        await transferBothWays(nodes, 8 << 20);
        const r = await echoes(nodes[0]!.ns, '198.19.2.0', { count: 3, intervalMs: 200, timeoutMs: 1000 });
        assert.equal(r.received, 3, summary(r));
        for (const n of nodes) assert.deepEqual((await n.stats()).threads, { mode: dataThreads, current: dataThreads, splits: 0, merges: 0 });
      } finally {
        await sub.destroy();
      }
    }
  });
});

describe('engine lifecycle', suiteNeeds(rootAndNetns()), () => {
  test('1,000 open/start/close cycles leak no fds or threads', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const set = new NetnsSet();
    try {
      const ns = set.add('cyc');
      const r = ns.exec(process.execPath, [join(FIXTURES, 'engine-cycles.js'), '1000'], { timeoutMs: 180_000 });
      const o = JSON.parse(r) as { before: { fds: number; threads: number }; after: { fds: number; threads: number }; ms: number };
      t.diagnostic(`cycles: ${r.trim()}`);
      assert.equal(o.after.fds, o.before.fds);
      assert.equal(o.after.threads, o.before.threads);
      assert.doesNotMatch(ns.ip('link', 'show'), /cyc\d/);
      // Never closed: the env cleanup hook must stop and join the threads so the process exits.
      const exitScript =
        "import('" + join(process.cwd(), 'dist', 'src', 'native', 'engine.js') + "').then(({Engine})=>{" +
        "const e=Engine.open({port:0});e.start();setTimeout(()=>process.exit(0),50)})";
      const t0 = Date.now();
      ns.exec(process.execPath, ['-e', exitScript], { timeoutMs: 10_000 });
      assert.ok(Date.now() - t0 < 10_000);
    } finally {
      await set.destroy();
    }
  });

  test('open errors keep the errno name and the device', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const set = new NetnsSet();
    try {
      const ns = set.add('err');
      const script =
        "import('" + join(process.cwd(), 'dist', 'src', 'native', 'engine.js') + "').then(({Engine})=>{" +
        "const a=Engine.open({port:0,tunName:'dup0'});" +
        "try{Engine.open({port:a.port,tunName:'dup1'})}catch(e){console.log(JSON.stringify({m:e.message,c:e.code}))}" +
        "try{Engine.open({port:0,tunName:'x'.repeat(20)})}catch(e){console.log(JSON.stringify({m:e.message,c:e.code}))}" +
        "try{Engine.open({port:0,bindV4:'198.18.77.1'})}catch(e){console.log(JSON.stringify({m:e.message,c:e.code}))}" +
        'a.close()})';
      const lines = ns.exec(process.execPath, ['-e', script]).trim().split('\n').map((l) => JSON.parse(l) as { m: string; c: string });
      assert.equal(lines[0]?.c, 'EADDRINUSE');
      assert.match(lines[0]!.m, /^bind UDP 0\.0\.0\.0:\d+: EADDRINUSE/);
      assert.equal(lines[1]?.c, 'EINVAL');
      assert.match(lines[1]!.m, /^open TUN x+: EINVAL/);
      assert.equal(lines[2]?.c, 'EADDRNOTAVAIL');
      assert.match(lines[2]!.m, /^bind UDP 198\.18\.77\.1:0: EADDRNOTAVAIL/);
    } finally {
      await set.destroy();
    }
  });
});

describe('allowUnknownSource (peers behind NAT)', suiteNeeds(rootAndNetns()), () => {
  test('any outer source is accepted, but the inner source must still be inside some peer subnet', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const set = new NetnsSet();
    try {
      const ul = set.add('natul');
      const node = set.add('nat');
      node.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'v1', 'netns', ul.name);
      ul.ip('addr', 'add', '198.18.0.99/24', 'dev', 'v1');
      ul.ip('link', 'set', 'v1', 'up');
      node.ip('addr', 'add', '198.18.0.12/24', 'dev', 'eth0');
      node.ip('link', 'set', 'eth0', 'up');
      const cfg: NodeConfig = {
        bindV4: '198.18.0.12',
        port: PORT,
        allowUnknownSource: true,
        tunAddrs: ['198.19.2.0/32'],
        mtu: 1472,
        routes: ['198.19.0.0/16'],
        // The peer's recorded public address is not where its datagrams come from (NAT).
        peers: [{ subnet: '198.19.1.0/24', publicIP: '198.18.0.11', port: PORT }],
      };
      const child = new JsonChild(node.spawn(process.execPath, [join(FIXTURES, 'engine-node.js'), JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] }));
      await child.take((o) => o.event === 'ready');
      const stats = async (): Promise<EngineStats> => {
        child.proc.stdin!.write('stats\n');
        return (await child.take((o) => o.event === 'stats')).stats as EngineStats;
      };
      const ok = ipv4({ src: '198.19.1.5', dst: '198.19.2.0', proto: 17, payload: udp(1, 7, Buffer.from('nat')) });
      const bad = ipv4({ src: '198.19.99.5', dst: '198.19.2.0', proto: 17, payload: udp(1, 7, Buffer.from('nat')) });
      const c = new JsonChild(
        ul.spawn(process.execPath, [join(FIXTURES, 'udp-tool.js'), 'send', '198.18.0.99', '198.18.0.12', String(PORT), `${ok.toString('hex')},${bad.toString('hex')}`]),
      );
      await c.take((o) => o.event === 'sent');
      let s = await stats();
      await waitFor(async () => {
        s = await stats();
        return s.rx.packets + s.drops.spoofed_source >= 2;
      });
      assert.equal(s.rx.packets, 1, 'inner source in a peer subnet is delivered');
      assert.equal(s.peers[0]?.rx.packets, 1);
      assert.equal(s.drops.spoofed_source, 1);
      assert.equal(s.drops.unknown_peer, 0);
    } finally {
      await set.destroy();
    }
  });
});

describe('engine open without privileges or /dev/net/tun', suiteNeeds(rootAndNetns(), binary('setpriv'), binary('unshare')), () => {
  const openScript = (o: string): string =>
    "import('" + join(process.cwd(), 'dist', 'src', 'native', 'engine.js') + "').then(({Engine})=>{" +
    `try{Engine.open(${o}).close();console.log('{}')}catch(e){console.log(JSON.stringify({m:e.message,c:e.code}))}})`;

  test('no CAP_NET_ADMIN -> EPERM naming the device and the capability', async (t) => {
    if (!need(t, rootAndNetns(), binary('setpriv'))) return;
    const set = new NetnsSet();
    try {
      const ns = set.add('perm');
      // uid 0 keeps file access to /dev/net/tun (0600 root) but every capability is dropped.
      const out = ns.exec('setpriv', ['--bounding-set=-all', '--inh-caps=-all', process.execPath, '-e', openScript('{port:0}')]);
      const r = JSON.parse(out) as { m: string; c: string };
      assert.equal(r.c, 'EPERM');
      assert.equal(r.m, 'open TUN flannel%d: EPERM (needs CAP_NET_ADMIN)');
    } finally {
      await set.destroy();
    }
  });

  test('no /dev/net/tun -> ENOENT', async (t) => {
    if (!need(t, rootAndNetns(), binary('unshare'))) return;
    const set = new NetnsSet();
    try {
      const ns = set.add('notun');
      // A private mount namespace with an empty /dev/net; the host's /dev is untouched.
      const out = ns.exec('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs none /dev/net && exec node -e "${openScript('{port:0}')}"`]);
      const r = JSON.parse(out) as { m: string; c: string };
      assert.equal(r.c, 'ENOENT');
      assert.match(r.m, /^open TUN flannel%d: ENOENT \(no \/dev\/net\/tun/);
    } finally {
      await set.destroy();
    }
  });
});

/** The first packet of a pcap from a TUN (raw IP, or Linux cooked capture v1/v2). */
function innerFromPcap(b: Buffer): Buffer {
  const le = b.readUInt32LE(0) === 0xa1b2c3d4 || b.readUInt32LE(0) === 0xa1b23c4d;
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const link = u32(20);
  const incl = u32(24 + 8);
  const skip = link === 113 ? 16 : link === 276 ? 20 : 0; // 101/12 = raw IP
  return b.subarray(24 + 16 + skip, 24 + 16 + incl);
}

function ipv4Checksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
