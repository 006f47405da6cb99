// `flannelctl lab`: N node namespaces on an underlay (topology.ts), each running a real flanneld process
// (daemons.ts) against one lease store — the embedded file store, a real etcd (lab-etcd.ts) or a fake
// Kubernetes API server (lab-apiserver.ts) — each with a pod namespace behind it; then all-pairs
// pod-to-pod checks (checks.ts). This class composes those parts and owns their teardown.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsSet, type Namespace } from './netns.js';
import { LAB_NETWORK_V4, LAB_NETWORK_V6, Topology } from './topology.js';
import { LabEtcd, LAB_ETCD_ENDPOINT, LAB_ETCD_PREFIX } from './lab-etcd.js';
import { LabApiServer, LAB_APISERVER_URL, type LabKubeNode } from './lab-apiserver.js';
import { NodeDaemons, type LabNode } from './daemons.js';
import { checkAllPairs, patienceFor, pingPair, waitForAllPaths, type PairPatience, type PairResult } from './checks.js';
import { labStateFile, saveLabState } from './state.js';
import type { Placement } from './placement.js';
import { checkDaemonThreads, checkReceiveSteering, type PlacementReadback } from './placement-check.js';
import { labMissingPrograms } from './programs.js';

export type { LabNode } from './daemons.js';
export type { LabKubeNode } from './lab-apiserver.js';
export type { PairPatience, PairResult } from './checks.js';

export interface LabOptions {
  nodes: number;
  backend: string;
  ipv6: boolean;
  /** SubnetLen of net-conf.json (default 24); the bench uses 28 to fit 1,000 peer leases. */
  subnetLen?: number;
  /** Extra keys merged into the Backend object of net-conf.json. */
  backendOptions?: Record<string, unknown>;
  /** Extra top-level keys of net-conf.json, e.g. {EnableNFTables: true}. */
  netConfExtra?: Record<string, unknown>;
  /**
   * The net-conf.json text as given, instead of netConf()'s (e.g. with duplicate or lower-case keys,
   * which a JavaScript object cannot hold).
   */
  netConfText?: string;
  /** Daemons see no /proc/sys/net/bridge, as on a host without br_netfilter (daemons.ts). */
  hideBrNetfilter?: boolean;
  /** Command that runs a flanneld-compatible daemon; default: this package's flanneld. */
  flanneld?: string[];
  /** Extra flags for every daemon. */
  daemonArgs?: string[];
  /** Extra flags for one daemon (node index from 0), e.g. -vxlan-userspace on some nodes. */
  nodeArgs?: (index: number) => string[];
  /** Extra environment for one daemon (node index from 0), e.g. FLANNELTS_FAILPOINTS. */
  nodeEnv?: (index: number) => Record<string, string>;
  prefix?: string;
  /**
   * Lease store: 'file' (the embedded store in a temp dir, default) or 'etcd' (a real etcd started
   * inside the lab's underlay namespace at 198.18.0.1:2379, flannel's keys under /coreos.com/network)
   * or 'kube' (a fake Kubernetes API server there at 198.18.0.1:6443 with one node object per lab node,
   * podCIDR 198.19.<i>.0/24; the daemons run with -kube-subnet-mgr and NODE_NAME=n<i>).
   */
  store?: 'file' | 'etcd' | 'kube';
  /** Two L2 segments joined by a router namespace instead of one bridge (see topology.ts). */
  routed?: boolean;
  /**
   * Called with the file store directory after the config is written and before any daemon starts,
   * e.g. to seed it with many peer leases that the daemons then read in one scan.
   */
  seedStore?: (storeDir: string) => void;
  /** Seconds to wait for every subnet.env. */
  startTimeoutSec?: number;
  /** Where the nodes run (placement.ts); absent: as the scheduler likes. Planned for `nodes` nodes. */
  placement?: Placement;
  /**
   * The last `count` nodes run no daemon of ours: once our daemons hold their leases, `start` sets
   * each up its own way (e.g. Debian's wireguard-go configured as stock flanneld would, its lease
   * written to the store) and returns what its subnet.env would hold, for its pod.
   */
  foreign?: { count: number; start(node: LabNode, lab: Lab): Promise<Record<string, string>> };
  log?: (line: string) => void;
}

export class Lab {
  readonly set: NetnsSet;
  readonly nodes: LabNode[] = [];
  readonly dir: string;
  readonly storeDir: string;
  private topology?: Topology;
  private etcd?: LabEtcd;
  private apiServer?: LabApiServer;
  private readonly daemons: NodeDaemons;
  private readonly log: (line: string) => void;

  constructor(readonly opts: LabOptions) {
    if (opts.flanneld !== undefined && opts.store !== 'etcd') {
      throw new Error('another flanneld binary has no embedded lease store: use it with --store etcd');
    }
    const missing = labMissingPrograms(opts);
    if (missing.length) throw new Error(missing.join('; '));
    this.set = new NetnsSet(opts.prefix);
    this.dir = mkdtempSync(join(tmpdir(), `flannelts-lab-${this.set.prefix}-`));
    this.storeDir = join(this.dir, 'store');
    this.log = opts.log ?? (() => {});
    this.daemons = new NodeDaemons(this.nodes, {
      flanneld: opts.flanneld,
      storeArgs: this.storeArgs(),
      daemonArgs: opts.daemonArgs,
      nodeArgs: opts.nodeArgs,
      nodeEnv: opts.nodeEnv,
      setNodeName: opts.store === 'kube',
      startTimeoutSec: opts.startTimeoutSec,
      hideBrNetfilter: opts.hideBrNetfilter,
      privateRun: opts.backend === 'wireguard',
      log: this.log,
    });
  }

  netConf(): Record<string, unknown> {
    const conf: Record<string, unknown> = {
      Network: LAB_NETWORK_V4,
      SubnetLen: this.opts.subnetLen ?? 24,
      Backend: { Type: this.opts.backend, ...(this.opts.backendOptions ?? {}) },
      ...(this.opts.netConfExtra ?? {}),
    };
    if (this.opts.ipv6) {
      conf.EnableIPv6 = true;
      conf.IPv6Network = LAB_NETWORK_V6;
      conf.IPv6SubnetLen = 64;
    }
    return conf;
  }

  /** What the store holds as net-conf.json. */
  netConfText(): string {
    return this.opts.netConfText ?? JSON.stringify(this.netConf());
  }

  /** Builds the underlay and node namespaces, starts the store and one daemon per node, attaches the pods. */
  async up(): Promise<void> {
    const n = this.opts.nodes;
    if (!Number.isInteger(n) || n < 1 || n > 200) throw new Error(`--nodes ${n}: use 1 to 200`);
    mkdirSync(this.storeDir, { recursive: true });
    writeFileSync(join(this.storeDir, 'config'), this.netConfText());
    this.opts.seedStore?.(this.storeDir);

    const topo = new Topology(this.set, { nodes: n, ipv6: this.opts.ipv6, routed: this.opts.routed, placement: this.opts.placement, log: this.log });
    this.topology = topo;
    if (this.opts.store === 'etcd' || this.opts.store === 'kube') topo.addServiceAddress();
    if (this.opts.store === 'etcd') {
      this.etcd = new LabEtcd(topo.underlay, this.dir, () => this.netConfText(), this.log);
      await this.etcd.start();
    }
    if (this.opts.store === 'kube') {
      writeFileSync(join(this.dir, 'net-conf.json'), this.netConfText());
      this.apiServer = new LabApiServer(topo.underlay, this.dir);
      const nodes = Array.from({ length: n }, (_, k) => ({ name: `n${k + 1}`, podCIDR: this.podCIDRs(k + 1)[0], podCIDRs: this.podCIDRs(k + 1) }));
      await this.apiServer.start(nodes);
      this.log(`fake Kubernetes API server at ${LAB_APISERVER_URL} in ${topo.underlay.name}, ${n} nodes`);
    }
    for (const t of topo.addNodes()) {
      const dir = join(this.dir, t.name);
      mkdirSync(dir, { recursive: true });
      // The topology node becomes the lab node: the same object, so its pod addresses show up here too.
      this.nodes.push(Object.assign(t, { dir, subnetEnv: {} }));
    }
    const foreign = this.opts.foreign;
    const ours = foreign ? this.nodes.slice(0, n - foreign.count) : this.nodes;
    for (const node of ours) this.daemons.start(node);
    await this.daemons.waitForSubnets(ours);
    for (const node of this.nodes.slice(ours.length)) node.subnetEnv = await foreign!.start(node, this);
    await this.daemons.waitForPeers();
    for (const node of this.nodes) this.attachPod(node);
    // After the daemons made their devices and the pods are attached: every interface exists now.
    topo.steerReceive();
    if (!this.daemons.ours) await waitForAllPaths(this.nodes, 20_000, (b) => this.daemons.log(b, 20));
  }

  private attachPod(node: LabNode): void {
    const env = node.subnetEnv;
    if (!env.FLANNEL_SUBNET || !env.FLANNEL_MTU) throw new Error(`node ${node.name}: subnet.env lacks FLANNEL_SUBNET or FLANNEL_MTU`);
    this.topo().attachPod(node, env.FLANNEL_SUBNET, env.FLANNEL_MTU, env.FLANNEL_IPV6_SUBNET);
  }

  private topo(): Topology {
    if (!this.topology) throw new Error('the lab is not up');
    return this.topology;
  }

  /** A host outside the overlay on segment 0 (see Topology.addExternalHost). */
  addExternalHost(short: string, ipv4: string): Namespace {
    return this.topo().addExternalHost(short, ipv4);
  }

  /** Deletes / re-creates a node's eth0 (Topology.unplug / replug). */
  unplug(node: LabNode): void {
    this.topo().unplug(node);
  }

  replug(node: LabNode): void {
    this.topo().replug(node);
  }

  /** The namespace holding the underlay bridge (and etcd / the API server). */
  underlayNs(): Namespace {
    return this.topo().underlay;
  }

  /** The pod CIDRs the lab's controller-manager stand-in assigns to node n<i>. */
  podCIDRs(i: number): string[] {
    return this.opts.ipv6 ? [`198.19.${i}.0/24`, `2001:db8:100:${i.toString(16)}::/64`] : [`198.19.${i}.0/24`];
  }

  private storeArgs(): string[] {
    switch (this.opts.store) {
      case 'etcd':
        return [`-etcd-endpoints=${LAB_ETCD_ENDPOINT}`, `-etcd-prefix=${LAB_ETCD_PREFIX}`];
      case 'kube':
        return ['-kube-subnet-mgr', `-kube-api-url=${LAB_APISERVER_URL}`, `-net-config-path=${join(this.dir, 'net-conf.json')}`];
      default:
        return [`-subnet-store-dir=${this.storeDir}`];
    }
  }

  // ---- the store ----

  private etcdOrThrow(): LabEtcd {
    if (!this.etcd) throw new Error('this lab has no etcd (store is not etcd)');
    return this.etcd;
  }

  private api(): LabApiServer {
    if (!this.apiServer) throw new Error('this lab has no API server (store is not kube)');
    return this.apiServer;
  }

  stopEtcd(): Promise<void> {
    return this.etcdOrThrow().stop();
  }

  restartEtcd(): Promise<void> {
    return this.etcdOrThrow().start();
  }

  signalEtcd(sig: NodeJS.Signals): void {
    this.etcdOrThrow().signal(sig);
  }

  etcdRequest(path: string, body: Record<string, string | number>): Record<string, unknown> {
    return this.etcdOrThrow().request(path, body);
  }

  etcdPut(key: string, value: string, ttlSeconds?: number): Promise<void> {
    return this.etcdOrThrow().put(key, value, ttlSeconds);
  }

  etcdList(prefix: string): Array<{ key: string; value: string }> {
    return this.etcdOrThrow().list(prefix);
  }

  etcdDelete(key: string): Promise<void> {
    return this.etcdOrThrow().delete(key);
  }

  stopApiServer(): Promise<void> {
    return this.api().stop();
  }

  resumeApiServer(edit?: (nodes: LabKubeNode[]) => LabKubeNode[]): Promise<void> {
    return this.api().resume(edit);
  }

  restartApiServer(downMs?: number): Promise<void> {
    return this.api().restart(downMs);
  }

  kubeCommand(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.apiServer ? this.apiServer.command(cmd) : Promise.reject(new Error('this lab has no API server (store is not kube)'));
  }

  // ---- the daemons ----

  startDaemon(node: LabNode): void {
    this.daemons.start(node);
  }

  stopDaemon(node: LabNode, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    return this.daemons.stop(node, signal);
  }

  statusSocket(node: LabNode): string {
    return this.daemons.statusSocket(node);
  }

  waitForPeers(timeoutMs?: number): Promise<void> {
    return this.daemons.waitForPeers(timeoutMs);
  }

  daemonLog(node: LabNode, lines?: number): string {
    return this.daemons.log(node, lines);
  }

  // ---- checks ----

  /** The placement read back: daemon threads' affinity and every interface's rps_cpus (empty problems: as planned). */
  checkPlacement(): PlacementReadback {
    if (!this.opts.placement) throw new Error('this lab was started without a placement');
    const threads = checkDaemonThreads(this.opts.placement, this.nodes);
    const queues = checkReceiveSteering(this.opts.placement, this.nodes, this.topo().underlay);
    return { threads: threads.threads, queues: queues.queues, problems: [...threads.problems, ...queues.problems] };
  }

  /** ICMP echoes from every pod to every other pod, all at once (v4, and v6 when enabled); see checks.ts. */
  checkAllPairs(count = 2): Promise<PairResult[]> {
    return checkAllPairs(this.nodes, this.opts.ipv6, count, patienceFor(this.opts.backend));
  }

  /** Echoes from a's pod to target (b's pod address) until `count` replies, for up to 5 s by default. */
  ping(a: LabNode, b: LabNode, family: 4 | 6, target: string | undefined, count = 2, patience?: PairPatience): Promise<PairResult> {
    return pingPair(a, b, family, target, count, patience);
  }

  // ---- lifetime ----

  /** Writes a state file so `flannelctl lab down` can remove a kept lab. */
  saveState(): string {
    const pids = [...this.nodes.map((n) => n.pid), this.etcd?.running, this.apiServer?.pid].filter((p): p is number => p !== undefined);
    const nodes = this.nodes.map((n) => ({ name: n.name, netns: n.ns.name, pod: n.pod.name, ...(n.pid !== undefined ? { pid: n.pid } : {}) }));
    return saveLabState({ prefix: this.set.prefix, dir: this.dir, pids, namespaces: this.set.list(), nodes });
  }

  async down(): Promise<void> {
    for (const node of this.nodes) await this.daemons.stop(node);
    await this.set.destroy();
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(labStateFile(this.set.prefix), { force: true });
  }
}
