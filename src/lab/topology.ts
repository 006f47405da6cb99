// The lab's network: an underlay bridge (or two segments and a router), node namespaces on it, and a
// pod namespace behind each node addressed from the node's lease like the CNI bridge does. Shared by
// `flannelctl lab`, the bench's kernel baselines and the tests. Addresses come only from
// 198.18.0.0/15 and 2001:db8::/32 (the network rule).
import { vethPair, type Namespace, type NetnsSet } from './netns.js';
import { nodeCpus, serviceCpus, type Placement } from './placement.js';
import { steerReceive } from './rps.js';

export const LAB_UNDERLAY_V4 = '198.18.0.0/24';
export const LAB_UNDERLAY_V6 = '2001:db8::/64';
export const LAB_NETWORK_V4 = '198.19.0.0/16';
export const LAB_NETWORK_V6 = '2001:db8:100::/56';
/** etcd and the fake API server of a lab live here, inside the underlay namespace, on the bridge. */
export const LAB_SERVICE_IP = '198.18.0.1';

/** A node of the lab: its namespace on the underlay and the pod namespace behind it. */
export interface TopologyNode {
  name: string;
  ns: Namespace;
  pod: Namespace;
  underlayIP: string;
  underlayIPv6?: string;
  /** Underlay segment (0, or 1 behind the router in a routed lab). */
  segment: number;
  podIP: string;
  podIPv6?: string;
}

export interface TopologyOptions {
  nodes: number;
  ipv6: boolean;
  /**
   * Two L2 segments joined by a router namespace instead of one bridge: the first half of the nodes on
   * 198.18.0.0/24 (2001:db8::/64), the rest on 198.18.1.0/24 (2001:db8:0:1::/64), router at .254 (::fe)
   * on both and every node's default route via it.
   */
  routed?: boolean;
  /**
   * Where the nodes run (placement.ts). Per-node: every process started in node i's namespaces is
   * pinned to its CPU set, and steerReceive() gives their interfaces that set as rps_cpus; the underlay
   * (and router, external hosts) run on the spare CPUs, or any CPU. Absent or shared: nothing pinned.
   */
  placement?: Placement;
  log?: (line: string) => void;
}

/** Node i's underlay address (1-based): 198.18.<segment>.<10+i>. */
export const underlayIPv4 = (i: number, segment = 0): string => `198.18.${segment}.${10 + i}`;
const underlayIPv6 = (i: number, segment: number): string => `2001:db8:0:${segment}::${(10 + i).toString(16)}`.replace(':0:0::', '::');

export function sysctl(ns: Namespace, key: string, value: string): void {
  ns.exec('sh', ['-c', `echo ${value} > /proc/sys/${key}`]);
}

/** "198.19.5.1/24" -> { gateway: "198.19.5.1", pod: "198.19.5.2", prefix: 24 } (v4 and v6). */
export function podAddresses(subnet: string): { gateway: string; pod: string; prefix: number } {
  const [addr, len] = subnet.split('/');
  if (!addr || !len) throw new Error(`bad subnet "${subnet}" in subnet.env`);
  const pod = addr.includes(':') ? addr.replace(/1$/, '2') : addr.replace(/\.(\d+)$/, (_, d: string) => `.${Number(d) + 1}`);
  return { gateway: addr, pod, prefix: Number(len) };
}

export class Topology {
  readonly underlay: Namespace;
  readonly nodes: TopologyNode[] = [];

  /** The underlay namespace with bridge br0 (and br1 + a router when routed). */
  constructor(
    private readonly set: NetnsSet,
    private readonly opts: TopologyOptions,
  ) {
    this.underlay = set.add('ul', serviceCpus(opts.placement));
    this.underlay.ip('link', 'add', 'br0', 'type', 'bridge');
    this.underlay.ip('link', 'set', 'br0', 'up');
    opts.log?.(`underlay bridge br0 in ${this.underlay.name}, ${LAB_UNDERLAY_V4}${opts.ipv6 ? ' + ' + LAB_UNDERLAY_V6 : ''}`);
    if (opts.routed) this.addRouter();
  }

  /** Gives the underlay namespace the services address (etcd, API server) on br0. */
  addServiceAddress(): void {
    this.underlay.ip('addr', 'add', `${LAB_SERVICE_IP}/24`, 'dev', 'br0');
    // Segment 1 of a routed lab reaches the services through the router.
    if (this.opts.routed) this.underlay.ip('route', 'add', '198.18.1.0/24', 'via', '198.18.0.254');
  }

  /** Node namespaces n1..nN on the underlay with a default route, forwarding on, and empty pod namespaces. */
  addNodes(): TopologyNode[] {
    const n = this.opts.nodes;
    for (let i = 1; i <= n; i++) {
      const name = `n${i}`;
      const cpus = nodeCpus(this.opts.placement, i - 1);
      const ns = this.set.add(name, cpus);
      const segment = this.opts.routed && i > Math.ceil(n / 2) ? 1 : 0;
      const underlayIP = underlayIPv4(i, segment);
      const v6 = this.opts.ipv6 ? underlayIPv6(i, segment) : undefined;
      this.plug(ns, i, segment);
      sysctl(ns, 'net/ipv4/ip_forward', '1');
      if (this.opts.ipv6) sysctl(ns, 'net/ipv6/conf/all/forwarding', '1');
      const pod = this.set.add(`p${i}`, cpus);
      this.nodes.push({ name, ns, pod, underlayIP, underlayIPv6: v6, segment, podIP: '' });
    }
    return this.nodes;
  }

  /** Node i's eth0: a veth to the underlay bridge of its segment, its addresses and default route. */
  private plug(ns: Namespace, i: number, segment: number): void {
    vethPair(ns, 'eth0', this.underlay, `v${i}`);
    this.underlay.ip('link', 'set', `v${i}`, 'master', `br${segment}`);
    ns.ip('addr', 'add', `${underlayIPv4(i, segment)}/24`, 'dev', 'eth0');
    if (this.opts.ipv6) ns.ip('addr', 'add', `${underlayIPv6(i, segment)}/64`, 'dev', 'eth0', 'nodad');
    // A default route on the underlay, as a real node has one (flanneld's default interface choice).
    if (this.opts.routed) {
      ns.ip('route', 'add', 'default', 'via', `198.18.${segment}.254`, 'dev', 'eth0');
      if (this.opts.ipv6) ns.ip('-6', 'route', 'add', 'default', 'via', `2001:db8:0:${segment}::fe`, 'dev', 'eth0');
    } else {
      ns.ip('route', 'add', 'default', 'dev', 'eth0');
    }
  }

  /** Deletes a node's eth0 (and with it the kernel's vxlan devices on it), as an unplugged NIC or a removed veth. */
  unplug(node: TopologyNode): void {
    node.ns.ip('link', 'del', 'eth0');
  }

  /** Re-creates a node's eth0 as addNodes made it (a new interface index, the same name and addresses). */
  replug(node: TopologyNode): void {
    this.plug(node.ns, this.nodes.indexOf(node) + 1, node.segment);
  }

  /**
   * The pod's veth to its node, addressed from the node's subnet (subnet.env's FLANNEL_SUBNET, e.g.
   * 198.19.5.1/24: the node takes .1, the pod .2) with the pod MTU and a default route via the node.
   */
  attachPod(node: TopologyNode, subnet: string, mtu: string, subnet6?: string): void {
    vethPair(node.ns, 'pod0', node.pod, 'eth0');
    const v4 = podAddresses(subnet);
    node.ns.ip('addr', 'add', `${v4.gateway}/${v4.prefix}`, 'dev', 'pod0');
    node.pod.ip('addr', 'add', `${v4.pod}/${v4.prefix}`, 'dev', 'eth0');
    node.pod.ip('link', 'set', 'eth0', 'mtu', mtu);
    node.pod.ip('route', 'add', 'default', 'via', v4.gateway);
    node.podIP = v4.pod;
    if (this.opts.ipv6 && subnet6) {
      const v6 = podAddresses(subnet6);
      node.ns.ip('addr', 'add', `${v6.gateway}/${v6.prefix}`, 'dev', 'pod0', 'nodad');
      node.pod.ip('addr', 'add', `${v6.pod}/${v6.prefix}`, 'dev', 'eth0', 'nodad');
      node.pod.ip('-6', 'route', 'add', 'default', 'via', v6.gateway);
      node.podIPv6 = v6.pod;
    }
  }

  /**
   * Per-node placement: every interface in each node's namespaces (node and pod) has its receive
   * processing steered to the node's CPUs. Run it after the daemons made their devices (flannel0,
   * flannel.1): rps_cpus belongs to a device, and one created later starts unsteered. The underlay's
   * ports stay unsteered: the bridge forwards on the CPU of the node that sends into it, as a NIC's
   * transmit costs the sending machine.
   */
  steerReceive(): void {
    this.nodes.forEach((node, i) => {
      const cpus = nodeCpus(this.opts.placement, i);
      if (!cpus) return;
      steerReceive(node.ns, cpus);
      steerReceive(node.pod, cpus);
    });
  }

  /**
   * A host outside the overlay on segment 0 (no route to the overlay network): traffic from pods reaches
   * it and gets replies only when it is masqueraded to the node's address.
   */
  addExternalHost(short: string, ipv4: string): Namespace {
    const ns = this.set.add(short, serviceCpus(this.opts.placement));
    const port = `x${short}`.slice(0, 15);
    vethPair(ns, 'eth0', this.underlay, port);
    this.underlay.ip('link', 'set', port, 'master', 'br0');
    ns.ip('addr', 'add', `${ipv4}/24`, 'dev', 'eth0');
    return ns;
  }

  /** The router of a routed lab: a namespace with a leg on br0 (segment 0) and on br1 (segment 1). */
  private addRouter(): void {
    this.underlay.ip('link', 'add', 'br1', 'type', 'bridge');
    this.underlay.ip('link', 'set', 'br1', 'up');
    const rt = this.set.add('rt', serviceCpus(this.opts.placement));
    for (const seg of [0, 1]) {
      vethPair(rt, `seg${seg}`, this.underlay, `rt${seg}`);
      this.underlay.ip('link', 'set', `rt${seg}`, 'master', `br${seg}`);
      rt.ip('addr', 'add', `198.18.${seg}.254/24`, 'dev', `seg${seg}`);
      if (this.opts.ipv6) rt.ip('addr', 'add', `2001:db8:0:${seg}::fe/64`, 'dev', `seg${seg}`, 'nodad');
    }
    sysctl(rt, 'net/ipv4/ip_forward', '1');
    if (this.opts.ipv6) sysctl(rt, 'net/ipv6/conf/all/forwarding', '1');
    this.opts.log?.(`router ${rt.name}: 198.18.0.254 (br0) <-> 198.18.1.254 (br1)`);
  }
}
