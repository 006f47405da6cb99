// The targets of `flannelctl bench`: kernel datapaths built with `ip` (raw underlay, vxlan laid out as
// flannel's vxlan backend does, host-gw routes) and daemon labs (our udp, with and without offloads,
// our userspace VXLAN VTEP, or another flanneld). Everything a target creates lives in namespaces with a per-run prefix and goes
// away in teardown(), also on failure or Ctrl-C.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeLeaseFile } from '../subnet/file/lease-file.js';
import { parseIP } from '../ip/index.js';
import type { BenchOptions } from './types.js';
import { rssMiB } from './procstat.js';
import { Lab } from '../lab/lab.js';
import { isAlive } from '../util/process.js';
import { NetnsSet, run, type Namespace } from '../lab/netns.js';
import type { PlacedNode } from '../lab/placement-check.js';
import type { Placement } from '../lab/placement.js';
import { Topology, underlayIPv4 } from '../lab/topology.js';
import { sleep } from '../util/sleep.js';
import { WireguardGoDevice, wgKeyPair } from '../lab/wireguard-go.js';

/** One measured setup: where the client and server run, and the daemons whose cost we count. */
export interface Target {
  /** Node 1's pod (node 1's namespace for raw): iperf3 client and ping act for node 1. */
  client: Namespace;
  /** Node 2's pod (or namespace): the iperf3 server acts for node 2. */
  server: Namespace;
  serverIP: string;
  /** Both nodes (namespaces and daemon PIDs) and the underlay, for the placement read-back. */
  nodes: PlacedNode[];
  underlay: Namespace;
  daemonPids: () => number[];
  /** For our udp: largest daemon RSS in a lab whose store already holds 1,000 leases. */
  rssWithPeers?: () => Promise<number>;
  note: string;
  /** Name prefix of every namespace this target made (reported, so a caller can check teardown). */
  prefix: string;
  teardown(): Promise<void>;
}

const UNDERLAY = (i: number): string => underlayIPv4(i);
/** Pod subnets of the hand-built targets, inside the lab's overlay network. */
const POD_NET = (i: number): { gw: string; pod: string; subnet: string } => ({ gw: `198.19.${i}.1`, pod: `198.19.${i}.2`, subnet: `198.19.${i}.0/24` });

/** The lab's topology with two nodes; with pods, a pod namespace behind each node on 198.19.<i>.0/24. */
function kernelTopology(set: NetnsSet, withPods: boolean, podMtu: number, placement: Placement): { topo: Topology; nodes: Namespace[]; pods: Namespace[] } {
  const topo = new Topology(set, { nodes: 2, ipv6: false, placement });
  const nodes = topo.addNodes();
  if (withPods) nodes.forEach((n, k) => topo.attachPod(n, `${POD_NET(k + 1).gw}/24`, String(podMtu)));
  return { topo, nodes: nodes.map((n) => n.ns), pods: withPods ? nodes.map((n) => n.pod) : [] };
}

export function kernelTarget(kind: 'raw' | 'vxlan' | 'host-gw', placement: Placement): Target {
  const set = new NetnsSet();
  try {
    if (kind === 'raw') {
      const { topo, nodes } = kernelTopology(set, false, 1500, placement);
      topo.steerReceive();
      const note = 'underlay addresses directly (veth + bridge), no overlay';
      return { client: nodes[0]!, server: nodes[1]!, serverIP: UNDERLAY(2), nodes: topo.nodes, underlay: topo.underlay, daemonPids: () => [], note, prefix: set.prefix, teardown: () => set.destroy() };
    }
    const { topo, nodes, pods } = kernelTopology(set, true, kind === 'vxlan' ? 1450 : 1500, placement);
    if (kind === 'host-gw') {
      nodes[0]!.ip('route', 'add', POD_NET(2).subnet, 'via', UNDERLAY(2));
      nodes[1]!.ip('route', 'add', POD_NET(1).subnet, 'via', UNDERLAY(1));
    } else {
      // flannel's vxlan layout (flannel-compat.md sec. 6): flannel.1 with VNI 1, port 8472, learning off,
      // per peer an onlink route, a permanent neighbour and an FDB entry to the peer's public IP.
      const macs: string[] = [];
      for (const i of [1, 2]) {
        const ns = nodes[i - 1]!;
        ns.ip('link', 'add', 'flannel.1', 'type', 'vxlan', 'id', '1', 'local', UNDERLAY(i), 'dev', 'eth0', 'dstport', '8472', 'nolearning', 'udpcsum');
        ns.ip('link', 'set', 'flannel.1', 'mtu', '1450', 'up');
        ns.ip('addr', 'add', `198.19.${i}.0/32`, 'dev', 'flannel.1');
        const link = JSON.parse(ns.ip('-j', 'link', 'show', 'flannel.1')) as Array<{ address: string }>;
        macs.push(link[0]!.address);
      }
      for (const i of [1, 2]) {
        const o = 3 - i;
        const ns = nodes[i - 1]!;
        ns.ip('route', 'add', POD_NET(o).subnet, 'via', `198.19.${o}.0`, 'dev', 'flannel.1', 'onlink');
        ns.ip('neigh', 'add', `198.19.${o}.0`, 'lladdr', macs[o - 1]!, 'dev', 'flannel.1', 'nud', 'permanent');
        ns.exec('bridge', ['fdb', 'append', macs[o - 1]!, 'dev', 'flannel.1', 'dst', UNDERLAY(o), 'self', 'permanent']);
      }
    }
    // flannel.1 exists now: steer every interface, it included.
    topo.steerReceive();
    const note = kind === 'vxlan' ? 'kernel vxlan set up with ip commands as flannel vxlan does (VNI 1, port 8472, MTU 1450)' : 'plain routes via the peer underlay address, as flannel host-gw does';
    return { client: pods[0]!, server: pods[1]!, serverIP: POD_NET(2).pod, nodes: topo.nodes, underlay: topo.underlay, daemonPids: () => [], note, prefix: set.prefix, teardown: () => set.destroy() };
  } catch (e) {
    void set.destroy();
    throw e;
  }
}

/** A /28 per node so 1,000 peer leases fit in 198.19.0.0/16 for the RSS-with-many-peers figure. */
const DAEMON_SUBNET_LEN = 28;

export async function daemonTarget(name: string, o: BenchOptions, placement: Placement): Promise<Target> {
  const stock = name.startsWith('flanneld-');
  const userspaceVxlan = name === 'vxlan-userspace';
  const wireguard = name === 'wireguard';
  const lab = new Lab({
    nodes: 2,
    // wireguard: this kernel has none, so both daemons run our userspace device (the fallback).
    backend: userspaceVxlan ? 'vxlan' : wireguard ? 'wireguard' : 'udp',
    // Both nodes run the userspace VTEP: the same wire format as the kernel vxlan target, in userspace.
    daemonArgs: userspaceVxlan ? ['-vxlan-userspace'] : undefined,
    ipv6: false,
    subnetLen: DAEMON_SUBNET_LEN,
    backendOptions: name === 'udp-nooffload' ? { Offload: false } : undefined,
    flanneld: stock && o.flanneld ? [o.flanneld] : undefined,
    // flanneld proper has no embedded store: give it a real etcd inside the lab.
    store: stock ? 'etcd' : 'file',
    placement,
  });
  try {
    await lab.up();
  } catch (e) {
    await lab.down();
    throw e;
  }
  const [a, b] = lab.nodes as [(typeof lab.nodes)[0], (typeof lab.nodes)[0]];
  const offloadLine = lab.daemonLog(a).split('\n').find((l) => l.includes('offloads')) ?? '';
  const ours = userspaceVxlan
    ? 'flannelts userspace VXLAN VTEP (-vxlan-userspace) on both nodes'
    : wireguard
      ? `flannelts userspace WireGuard (${lab.daemonLog(a).includes('falls back to userspace') ? 'the kernel has none' : '-wireguard-userspace'}) on both nodes, Mode separate, MTU 1420`
      : 'flannelts udp';
  const target: Target = {
    client: a.pod,
    server: b.pod,
    serverIP: b.podIP,
    nodes: lab.nodes,
    underlay: lab.underlayNs(),
    daemonPids: () => lab.nodes.map((n) => n.pid).filter((p): p is number => p !== undefined && isAlive(p)),
    note: stock ? `${o.flanneld} with the same net-conf, etcd store` : `${ours}${offloadLine ? ': ' + offloadLine.replace(/^.*(udp|vxlan): /, '') : ''}`,
    prefix: lab.set.prefix,
    teardown: () => lab.down(),
  };
  if (name === 'udp') target.rssWithPeers = () => rssWith1000Peers(o, placement);
  return target;
}

/**
 * A fresh 2-node lab whose file store is seeded with 998 more leases before the daemons start, so each
 * daemon loads 999 peers in one scan (writing them one by one while it runs would measure the file
 * store's burst of re-scans instead). Largest VmRSS after the tables settle.
 */
async function rssWith1000Peers(o: BenchOptions, placement: Placement): Promise<number> {
  const lab = new Lab({
    nodes: 2,
    placement,
    backend: 'udp',
    ipv6: false,
    subnetLen: DAEMON_SUBNET_LEN,
    seedStore: (dir) => {
      const exp = new Date(Date.now() + 3600_000);
      for (let i = 0; i < 998; i++) {
        // 198.19.100.0/28 upwards: clear of the low subnets; peers that never answer are fine for this.
        const subnet = `198.19.${100 + Math.floor(i / 16)}.${(i % 16) * 16}-${DAEMON_SUBNET_LEN}`;
        const pub = parseIP(`198.18.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`);
        writeFileSync(join(dir, subnet), encodeLeaseFile({ publicIP: pub, backendType: 'udp' }, exp));
      }
    },
  });
  try {
    await lab.up();
    await sleep(o.quick ? 2000 : 5000);
    const pids = lab.nodes.map((n) => n.pid).filter((p): p is number => p !== undefined && isAlive(p));
    if (pids.length !== 2) throw new Error('a daemon exited with 1,000 peers');
    return Math.max(...pids.map(rssMiB));
  } finally {
    await lab.down();
  }
}

/** Debian's wireguard-go's version, for the row's note. */
function wireguardGoVersion(): string {
  try {
    // "wireguard-go v0.0.20220316" on the first line, then the copyright.
    return run('wireguard-go', ['--version']).trim().split('\n')[0]?.split(/\s+/).pop() ?? '';
  } catch {
    return '';
  }
}

/**
 * Debian's wireguard-go on both nodes of the lab's topology, set up with wg the way flannel's wireguard
 * backend configures a kernel device (key, port 51820, the subnet's network address, MTU 1500 - 80, the
 * network route, one peer per node with endpoint and allowed IPs). The placement applies as to our
 * daemons: wireguard-go starts in its node's namespace, pinned there.
 */
export async function wireguardGoTarget(placement: Placement): Promise<Target> {
  const set = new NetnsSet();
  const dir = mkdtempSync(join(tmpdir(), 'flannelts-bench-wgo-'));
  const teardown = async (): Promise<void> => {
    await set.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const topo = new Topology(set, { nodes: 2, ipv6: false, placement });
    const nodes = topo.addNodes();
    const keys = [wgKeyPair(), wgKeyPair()];
    const devs: WireguardGoDevice[] = [];
    for (const k of [0, 1]) {
      devs.push(
        await WireguardGoDevice.start(nodes[k]!.ns, { name: 'flannel-wg', privateKey: keys[k]!.privateKey, listenPort: 51820, mtu: 1420, addresses: [`198.19.${k + 1}.0/32`], routes: ['198.19.0.0/16'], dir }),
      );
    }
    for (const k of [0, 1]) devs[k]!.setPeer({ publicKey: keys[1 - k]!.publicKey, endpoint: `${UNDERLAY(2 - k)}:51820`, allowedIPs: [POD_NET(2 - k).subnet] });
    nodes.forEach((n, k) => topo.attachPod(n, `${POD_NET(k + 1).gw}/24`, '1420'));
    topo.steerReceive();
    const placed: PlacedNode[] = nodes.map((n, k) => ({ name: n.name, ns: n.ns, pod: n.pod, ...(devs[k]!.pid !== undefined ? { pid: devs[k]!.pid } : {}) }));
    return {
      client: nodes[0]!.pod,
      server: nodes[1]!.pod,
      serverIP: POD_NET(2).pod,
      nodes: placed,
      underlay: topo.underlay,
      daemonPids: () => devs.map((d) => d.pid).filter((p): p is number => p !== undefined && isAlive(p)),
      note: `Debian wireguard-go ${wireguardGoVersion()} + wg on both nodes, set up as flannel's wireguard backend sets up a kernel device (port 51820, MTU 1420, one peer per node)`,
      prefix: set.prefix,
      teardown,
    };
  } catch (e) {
    await teardown();
    throw e;
  }
}
