// `flannelctl lab`: N node namespaces on an underlay bridge, each running a real flanneld process
// against one embedded file lease store, each with a pod namespace behind it; then all-pairs
// pod-to-pod checks. Addresses come only from 198.18.0.0/15 and 2001:db8::/32 (the network rule).
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { hasBinary, NetnsSet, vethPair, type Namespace } from './netns.js';
import { FLANNELD_NODE_FLAGS } from '../cli/node-flags.js';

export const LAB_UNDERLAY_V4 = '198.18.0.0/24';
export const LAB_UNDERLAY_V6 = '2001:db8::/64';
export const LAB_NETWORK_V4 = '198.19.0.0/16';
export const LAB_NETWORK_V6 = '2001:db8:100::/56';
/** State files of labs started with --keep, so `flannelctl lab down` can find them. */
export const LAB_STATE_DIR = '/run/flannelts-lab';
/** etcd of a `--store etcd` lab: inside the underlay namespace, on the bridge. */
export const LAB_ETCD_IP = '198.18.0.1';
export const LAB_ETCD_ENDPOINT = `http://${LAB_ETCD_IP}:2379`;
export const LAB_ETCD_PREFIX = '/coreos.com/network';
/** Fake Kubernetes API server of a `--store kube` lab: same address, plain HTTP. */
export const LAB_APISERVER_URL = `http://${LAB_ETCD_IP}:6443`;

export interface LabOptions {
  nodes: number;
  backend: string;
  ipv6: boolean;
  /** SubnetLen of net-conf.json (default 24); the bench uses 28 to fit 1,000 peer leases. */
  subnetLen?: number;
  /** Extra keys merged into the Backend object of net-conf.json. */
  backendOptions?: Record<string, unknown>;
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
  /**
   * Two L2 segments joined by a router namespace instead of one bridge: the first half of the nodes on
   * 198.18.0.0/24 (2001:db8::/64), the rest on 198.18.1.0/24 (2001:db8:0:1::/64), router at .254 (::fe)
   * on both and every node's default route via it. For DirectRouting and host-gw reachability tests.
   */
  routed?: boolean;
  /**
   * Called with the file store directory after the config is written and before any daemon starts,
   * e.g. to seed it with many peer leases that the daemons then read in one scan.
   */
  seedStore?: (storeDir: string) => void;
  /** Seconds to wait for every subnet.env. */
  startTimeoutSec?: number;
  log?: (line: string) => void;
}

export interface LabNode {
  name: string;
  ns: Namespace;
  pod: Namespace;
  underlayIP: string;
  underlayIPv6?: string;
  /** Underlay segment (0, or 1 behind the router in a routed lab). */
  segment: number;
  dir: string;
  subnetEnv: Record<string, string>;
  podIP: string;
  podIPv6?: string;
  pid?: number;
}

/** A node object of the lab's fake API server, as the server is started with it. */
export interface LabKubeNode {
  name: string;
  podCIDR?: string;
  podCIDRs?: string[];
  annotations?: Record<string, string>;
}

/** The parts of a node object the lab reads back from its API server. */
interface KubeNodeObject {
  metadata: { name: string; resourceVersion: string; annotations?: Record<string, string> };
  spec: { podCIDR?: string; podCIDRs?: string[] };
}

export interface PairResult {
  from: string;
  to: string;
  family: 4 | 6;
  ok: boolean;
  detail: string;
}

/** How the lab runs our flanneld: this node, with the node flags of flanneld's shebang. */
export const ourFlanneld = (): string[] => {
  const here = dirname(fileURLToPath(import.meta.url));
  return [process.execPath, ...FLANNELD_NODE_FLAGS, join(here, '..', 'cli', 'flanneld.js')];
};

/** Parses subnet.env's KEY=VALUE lines (the CNI plugin's reading of it). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m && m[1]) out[m[1]] = m[2] ?? '';
  }
  return out;
}

/** "198.19.5.1/24" -> { first: "198.19.5.1", second: "198.19.5.2", prefix: 24 } (v4 and v6). */
export function podAddresses(subnet: string): { gateway: string; pod: string; prefix: number } {
  const [addr, len] = subnet.split('/');
  if (!addr || !len) throw new Error(`bad subnet "${subnet}" in subnet.env`);
  const pod = addr.includes(':') ? addr.replace(/1$/, '2') : addr.replace(/\.(\d+)$/, (_, d: string) => `.${Number(d) + 1}`);
  return { gateway: addr, pod, prefix: Number(len) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Lab {
  readonly set: NetnsSet;
  readonly nodes: LabNode[] = [];
  readonly dir: string;
  readonly storeDir: string;
  private underlay!: Namespace;
  private etcdPid?: number;
  private readonly log: (line: string) => void;
  private apiServer?: { child: ChildProcess; lines: Interface; queue: Promise<unknown> };
  /** Node objects of a stopped API server, for resumeApiServer(). */
  private stoppedApi?: { nodes: LabKubeNode[]; rv: number };

  constructor(readonly opts: LabOptions) {
    this.set = new NetnsSet(opts.prefix);
    this.dir = mkdtempSync(join(tmpdir(), `flannelts-lab-${this.set.prefix}-`));
    this.storeDir = join(this.dir, 'store');
    this.log = opts.log ?? (() => {});
  }

  netConf(): Record<string, unknown> {
    const conf: Record<string, unknown> = {
      Network: LAB_NETWORK_V4,
      SubnetLen: this.opts.subnetLen ?? 24,
      Backend: { Type: this.opts.backend, ...(this.opts.backendOptions ?? {}) },
    };
    if (this.opts.ipv6) {
      conf.EnableIPv6 = true;
      conf.IPv6Network = LAB_NETWORK_V6;
      conf.IPv6SubnetLen = 64;
    }
    return conf;
  }

  /** Builds the underlay and node namespaces and starts one daemon per node. */
  async up(): Promise<void> {
    const n = this.opts.nodes;
    if (!Number.isInteger(n) || n < 1 || n > 200) throw new Error(`--nodes ${n}: use 1 to 200`);
    mkdirSync(this.storeDir, { recursive: true });
    writeFileSync(join(this.storeDir, 'config'), JSON.stringify(this.netConf()));
    this.opts.seedStore?.(this.storeDir);

    this.underlay = this.set.add('ul');
    this.underlay.ip('link', 'add', 'br0', 'type', 'bridge');
    this.underlay.ip('link', 'set', 'br0', 'up');
    if (this.opts.store === 'etcd') await this.startEtcd();
    if (this.opts.store === 'kube') await this.startApiServer(n);
    this.log(`underlay bridge br0 in ${this.underlay.name}, ${LAB_UNDERLAY_V4}${this.opts.ipv6 ? ' + ' + LAB_UNDERLAY_V6 : ''}`);
    if (this.opts.routed) this.addRouter();

    for (let i = 1; i <= n; i++) {
      const name = `n${i}`;
      const ns = this.set.add(name);
      const segment = this.opts.routed && i > Math.ceil(n / 2) ? 1 : 0;
      vethPair(ns, 'eth0', this.underlay, `v${i}`);
      this.underlay.ip('link', 'set', `v${i}`, 'master', `br${segment}`);
      const underlayIP = `198.18.${segment}.${10 + i}`;
      ns.ip('addr', 'add', `${underlayIP}/24`, 'dev', 'eth0');
      let underlayIPv6: string | undefined;
      if (this.opts.ipv6) {
        underlayIPv6 = `2001:db8:0:${segment}::${(10 + i).toString(16)}`.replace(':0:0::', '::');
        ns.ip('addr', 'add', `${underlayIPv6}/64`, 'dev', 'eth0', 'nodad');
      }
      // A default route on the underlay, as a real node has one (flanneld's default interface choice).
      if (this.opts.routed) {
        ns.ip('route', 'add', 'default', 'via', `198.18.${segment}.254`, 'dev', 'eth0');
        if (this.opts.ipv6) ns.ip('-6', 'route', 'add', 'default', 'via', `2001:db8:0:${segment}::fe`, 'dev', 'eth0');
      } else {
        ns.ip('route', 'add', 'default', 'dev', 'eth0');
      }
      this.sysctl(ns, 'net/ipv4/ip_forward', '1');
      if (this.opts.ipv6) this.sysctl(ns, 'net/ipv6/conf/all/forwarding', '1');
      const dir = join(this.dir, name);
      mkdirSync(dir, { recursive: true });
      const pod = this.set.add(`p${i}`);
      this.nodes.push({ name, ns, pod, underlayIP, underlayIPv6, segment, dir, subnetEnv: {}, podIP: '' });
    }
    for (const node of this.nodes) this.startDaemon(node);
    await this.waitForSubnets();
    await this.waitForPeers();
    for (const node of this.nodes) this.attachPod(node);
    await this.waitForForeignPaths();
  }

  /** The router of a routed lab: a namespace with a leg on br0 (segment 0) and on br1 (segment 1). */
  private addRouter(): void {
    this.underlay.ip('link', 'add', 'br1', 'type', 'bridge');
    this.underlay.ip('link', 'set', 'br1', 'up');
    const rt = this.set.add('rt');
    for (const seg of [0, 1]) {
      vethPair(rt, `seg${seg}`, this.underlay, `rt${seg}`);
      this.underlay.ip('link', 'set', `rt${seg}`, 'master', `br${seg}`);
      rt.ip('addr', 'add', `198.18.${seg}.254/24`, 'dev', `seg${seg}`);
      if (this.opts.ipv6) rt.ip('addr', 'add', `2001:db8:0:${seg}::fe/64`, 'dev', `seg${seg}`, 'nodad');
    }
    this.sysctl(rt, 'net/ipv4/ip_forward', '1');
    if (this.opts.ipv6) this.sysctl(rt, 'net/ipv6/conf/all/forwarding', '1');
    // The lab's etcd sits on br0 in the underlay namespace; segment 1 reaches it through the router.
    if (this.opts.store === 'etcd') this.underlay.ip('route', 'add', '198.18.1.0/24', 'via', '198.18.0.254');
    this.log(`router ${rt.name}: 198.18.0.254 (br0) <-> 198.18.1.254 (br1)`);
  }

  /**
   * A host outside the overlay on segment 0 (no route to the overlay network): traffic from pods reaches
   * it and gets replies only when it is masqueraded to the node's address.
   */
  addExternalHost(short: string, ipv4: string): Namespace {
    const ns = this.set.add(short);
    vethPair(ns, 'eth0', this.underlay, `x${short}`.slice(0, 15));
    this.underlay.ip('link', 'set', `x${short}`.slice(0, 15), 'master', 'br0');
    ns.ip('addr', 'add', `${ipv4}/24`, 'dev', 'eth0');
    return ns;
  }

  /** A single-member etcd in the underlay namespace, with the lab's net-conf under <prefix>/config. */
  private async startEtcd(): Promise<void> {
    this.underlay.ip('addr', 'add', `${LAB_ETCD_IP}/24`, 'dev', 'br0');
    await this.restartEtcd();
  }

  /** Stops the lab's etcd (an outage); its data directory is kept for restartEtcd(). */
  async stopEtcd(): Promise<void> {
    const pid = this.etcdPid;
    if (pid === undefined) return;
    this.etcdPid = undefined;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    for (let i = 0; i < 200 && isAlive(pid); i++) await sleep(25);
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }

  /** (Re)starts the lab's etcd on the same data directory and makes sure the config key is there. */
  async restartEtcd(): Promise<void> {
    const dataDir = join(this.dir, 'etcd');
    const peer = `http://${LAB_ETCD_IP}:2380`;
    const logFd = openSync(join(this.dir, 'etcd.log'), 'a');
    try {
      const etcd = this.underlay.spawn('etcd', [
        '--name', 'lab', '--data-dir', dataDir,
        '--listen-client-urls', LAB_ETCD_ENDPOINT, '--advertise-client-urls', LAB_ETCD_ENDPOINT,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `lab=${peer}`,
        '--log-level', 'warn',
      ], { stdio: ['ignore', logFd, logFd], detached: true });
      etcd.unref();
      this.etcdPid = etcd.pid;
    } finally {
      closeSync(logFd);
    }
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await this.etcdPut(`${LAB_ETCD_PREFIX}/config`, JSON.stringify(this.netConf()));
        break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`lab etcd did not come up at ${LAB_ETCD_ENDPOINT}: ${(e as Error).message}`);
        await sleep(200);
      }
    }
    this.log(`etcd at ${LAB_ETCD_ENDPOINT} in ${this.underlay.name}, config at ${LAB_ETCD_PREFIX}/config`);
  }

  /** The pod CIDRs the lab's controller-manager stand-in assigns to node n<i>. */
  podCIDRs(i: number): string[] {
    return this.opts.ipv6 ? [`198.19.${i}.0/24`, `2001:db8:100:${i.toString(16)}::/64`] : [`198.19.${i}.0/24`];
  }

  /** The fake API server in the underlay namespace, one node object per lab node, net-conf in a file. */
  private async startApiServer(n: number): Promise<void> {
    this.underlay.ip('addr', 'add', `${LAB_ETCD_IP}/24`, 'dev', 'br0');
    writeFileSync(join(this.dir, 'net-conf.json'), JSON.stringify(this.netConf()));
    const nodes = Array.from({ length: n }, (_, k) => ({ name: `n${k + 1}`, podCIDR: this.podCIDRs(k + 1)[0], podCIDRs: this.podCIDRs(k + 1) }));
    await this.spawnApiServer(nodes, 100);
    this.log(`fake Kubernetes API server at ${LAB_APISERVER_URL} in ${this.underlay.name}, ${n} nodes`);
  }

  /**
   * Stops the API server (an outage as the daemons see it: connections cut, then refused). Its node
   * objects (annotations included) are kept for resumeApiServer().
   */
  async stopApiServer(): Promise<void> {
    const api = this.apiServer;
    if (!api) throw new Error('this lab has no running API server (store is not kube, or it is stopped)');
    const state = await this.kubeCommand({ op: 'nodes' });
    const objects = state.nodes as KubeNodeObject[];
    const nodes = objects.map((x): LabKubeNode => ({ name: x.metadata.name, podCIDR: x.spec.podCIDR, podCIDRs: x.spec.podCIDRs, annotations: x.metadata.annotations }));
    // The server's own counter (deletes bump it too); older servers' answers lack it.
    const rv = Number(state.resourceVersion ?? Math.max(0, ...objects.map((x) => Number(x.metadata.resourceVersion))));
    this.stoppedApi = { nodes, rv };
    api.child.kill('SIGTERM');
    await new Promise<void>((resolve) => (api.child.exitCode !== null || api.child.signalCode !== null ? resolve() : api.child.once('exit', () => resolve())));
    this.apiServer = undefined;
  }

  /**
   * Starts the API server again with the node objects it had when stopped and higher resourceVersions
   * (what the daemons see of a kube-apiserver restart). `edit` changes that node set first: a node
   * deleted or added while the server was down, as another API server replica would have recorded it.
   */
  async resumeApiServer(edit: (nodes: LabKubeNode[]) => LabKubeNode[] = (n) => n): Promise<void> {
    const saved = this.stoppedApi;
    if (!saved) throw new Error('the lab\'s API server was not stopped with stopApiServer()');
    this.stoppedApi = undefined;
    await this.spawnApiServer(edit(saved.nodes.map((n) => ({ ...n }))), saved.rv + 1000);
  }

  /** An API server restart: stop, `downMs` without it, start again with the same nodes. */
  async restartApiServer(downMs = 500): Promise<void> {
    await this.stopApiServer();
    await sleep(downMs);
    await this.resumeApiServer();
  }

  private async spawnApiServer(nodes: LabKubeNode[], rv: number): Promise<void> {
    const here = dirname(fileURLToPath(import.meta.url));
    const url = new URL(LAB_APISERVER_URL);
    const logFd = openSync(join(this.dir, 'apiserver.log'), 'a');
    let child: ChildProcess;
    try {
      child = this.underlay.spawn(process.execPath, [join(here, 'fake-apiserver-main.js'), '--host', url.hostname, '--port', url.port, '--nodes', JSON.stringify(nodes), '--rv', String(rv)], {
        stdio: ['pipe', 'pipe', logFd],
        detached: true,
      });
    } finally {
      closeSync(logFd);
    }
    const lines = createInterface({ input: child.stdout! });
    const ready = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`lab API server did not start at ${LAB_APISERVER_URL}; see ${join(this.dir, 'apiserver.log')}`)), 15_000);
      lines.once('line', (l) => { clearTimeout(timer); resolve(l); });
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`lab API server exited (${code}); see ${join(this.dir, 'apiserver.log')}`)); });
    });
    if (!(JSON.parse(ready) as { ready?: boolean }).ready) throw new Error(`lab API server: unexpected "${ready}"`);
    this.apiServer = { child, lines, queue: Promise.resolve() };
  }

  /** One command to the lab's API server over its stdin (see fake-apiserver-main.ts); its JSON answer. */
  kubeCommand(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    const api = this.apiServer;
    if (!api) return Promise.reject(new Error('this lab has no API server (store is not kube)'));
    const next = api.queue.then(
      () =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('lab API server did not answer')), 5000);
          api.lines.once('line', (l) => { clearTimeout(timer); resolve(JSON.parse(l) as Record<string, unknown>); });
          api.child.stdin!.write(JSON.stringify(cmd) + '\n');
        }),
    );
    api.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Talks to the lab's etcd through its JSON gateway from inside the underlay namespace (the lab's
   * addresses are not reachable from the namespace this process runs in).
   */
  etcdRequest(path: string, body: Record<string, string | number>): Record<string, unknown> {
    const script = `fetch(${JSON.stringify(LAB_ETCD_ENDPOINT + path)},{method:'POST',body:process.argv[1]}).then(async r=>{if(!r.ok)throw new Error(r.status+' '+await r.text());process.stdout.write(await r.text())}).catch(e=>{console.error(e.message);process.exit(1)})`;
    const out = this.underlay.exec(process.execPath, ['-e', script, JSON.stringify(body)], { timeoutMs: 5000 });
    return JSON.parse(out) as Record<string, unknown>;
  }

  /**
   * Puts a key; with `ttlSeconds` the key is attached to a fresh etcd lease of that TTL, so etcd itself
   * deletes it when the TTL runs out (how a flannel lease whose node stopped renewing expires).
   */
  async etcdPut(key: string, value: string, ttlSeconds?: number): Promise<void> {
    const body: Record<string, string> = { key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') };
    if (ttlSeconds !== undefined) body.lease = String(this.etcdRequest('/v3/lease/grant', { TTL: ttlSeconds }).ID);
    this.etcdRequest('/v3/kv/put', body);
  }

  /** Keys and values under a prefix, decoded. */
  etcdList(prefix: string): Array<{ key: string; value: string }> {
    const end = Buffer.from(prefix);
    end[end.length - 1]!++;
    const r = this.etcdRequest('/v3/kv/range', { key: Buffer.from(prefix).toString('base64'), range_end: end.toString('base64') }) as { kvs?: Array<{ key: string; value: string }> };
    return (r.kvs ?? []).map((kv) => ({ key: Buffer.from(kv.key, 'base64').toString(), value: Buffer.from(kv.value, 'base64').toString() }));
  }

  async etcdDelete(key: string): Promise<void> {
    this.etcdRequest('/v3/kv/deleterange', { key: Buffer.from(key).toString('base64') });
  }

  private sysctl(ns: Namespace, key: string, value: string): void {
    ns.exec('sh', ['-c', `echo ${value} > /proc/sys/${key}`]);
  }

  startDaemon(node: LabNode): void {
    const cmd = this.opts.flanneld ?? ourFlanneld();
    const ours = this.opts.flanneld === undefined;
    if (!ours && this.opts.store !== 'etcd') {
      throw new Error('another flanneld binary has no embedded lease store: use it with --store etcd');
    }
    const args = [
      ...cmd.slice(1),
      '-iface=eth0',
      ...this.storeArgs(),
      `-subnet-file=${join(node.dir, 'subnet.env')}`,
      // flanneld's forward rules (on by default) need iptables; the lab needs only iproute2, and its
      // namespaces forward without rules, so without iptables the lab runs with them off.
      ...(this.iptablesMissing() ? ['-iptables-forward-rules=false'] : []),
      // flannelts extensions, which a stock flanneld would reject.
      ...(ours ? [`-status-socket=${this.statusSocket(node)}`] : []),
      ...(this.opts.daemonArgs ?? []),
      ...(this.opts.nodeArgs?.(this.nodes.indexOf(node)) ?? []),
    ];
    const logFd = openSync(join(node.dir, 'flanneld.log'), 'a');
    try {
      // In kube mode the node name comes from NODE_NAME, as the DaemonSet's downward API sets it.
      const env = {
        ...process.env,
        ...(this.opts.store === 'kube' ? { NODE_NAME: node.name } : {}),
        ...(this.opts.nodeEnv?.(this.nodes.indexOf(node)) ?? {}),
      };
      const child = node.ns.spawn(cmd[0]!, args, { stdio: ['ignore', logFd, logFd], detached: true, env });
      // Daemons are tracked by PID; an unref'd child lets `lab --keep` exit while they keep running.
      child.unref();
      node.pid = child.pid;
    } finally {
      closeSync(logFd);
    }
  }

  /** The namespace holding the underlay bridge (and etcd in a `--store etcd` lab). */
  underlayNs(): Namespace {
    return this.underlay;
  }

  private iptablesNoted = false;
  private iptablesMissing(): boolean {
    if (hasBinary('iptables-restore')) return false;
    if (!this.iptablesNoted) this.log('iptables-restore not found: daemons run with -iptables-forward-rules=false (apt-get install iptables for the rules)');
    this.iptablesNoted = true;
    return true;
  }

  statusSocket(node: LabNode): string {
    return join(node.dir, 'flannelts.sock');
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

  /** Stops the daemon of one node (SIGTERM, or SIGKILL to simulate a crash). */
  async stopDaemon(node: LabNode, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    if (node.pid === undefined) return;
    const pid = node.pid;
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await sleep(30);
    }
    node.pid = undefined;
  }

  private async waitForSubnets(): Promise<void> {
    const deadline = Date.now() + (this.opts.startTimeoutSec ?? 30) * 1000;
    for (const node of this.nodes) {
      const file = join(node.dir, 'subnet.env');
      while (!existsSync(file)) {
        if (Date.now() > deadline) {
          throw new Error(`node ${node.name}: no subnet.env after ${this.opts.startTimeoutSec ?? 30}s; daemon log:\n${this.daemonLog(node, 20)}`);
        }
        if (node.pid !== undefined && !isAlive(node.pid)) {
          throw new Error(`node ${node.name}: flanneld exited before writing subnet.env; daemon log:\n${this.daemonLog(node, 20)}`);
        }
        await sleep(50);
      }
      node.subnetEnv = parseEnvFile(readFileSync(file, 'utf8'));
    }
  }

  /**
   * Every daemon knows every other node's lease: subnet.env is written once the lease store's snapshot
   * is applied, but leases taken after that arrive as watch events a moment later. Read from the status
   * socket, so only for our own flanneld.
   */
  async waitForPeers(timeoutMs = 20_000): Promise<void> {
    if (this.opts.flanneld !== undefined) return;
    const { fetchStatus } = await import('../status.js');
    const deadline = Date.now() + timeoutMs;
    for (const node of this.nodes) {
      for (;;) {
        const known = await fetchStatus(this.statusSocket(node)).then((s) => s.peers.length, () => -1);
        if (known >= this.nodes.length - 1) break;
        if (Date.now() > deadline) throw new Error(`node ${node.name}: knows ${Math.max(known, 0)} of ${this.nodes.length - 1} peers after ${timeoutMs / 1000}s; daemon log:\n${this.daemonLog(node, 20)}`);
        await sleep(100);
      }
    }
  }

  /**
   * Another flanneld has no status socket, so the only sign that it has learned its peers' leases is
   * traffic: every pod reaches every other pod (IPv4). A stock flanneld can take a few seconds after
   * writing subnet.env, and a measurement started before that sees only losses.
   */
  private async waitForForeignPaths(timeoutMs = 20_000): Promise<void> {
    if (this.opts.flanneld === undefined) return;
    const deadline = Date.now() + timeoutMs;
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if (a === b) continue;
        // ping() itself retries a few times; keep at it until the deadline.
        while (!(await this.ping(a, b, 4, b.podIP, 1)).ok) {
          if (Date.now() > deadline) throw new Error(`pod ${a.name} -> ${b.name} (${b.podIP}): no reply after ${timeoutMs / 1000}s; daemon log of ${b.name}:\n${this.daemonLog(b, 20)}`);
        }
      }
    }
  }

  daemonLog(node: LabNode, lines = 1e9): string {
    try {
      return readFileSync(join(node.dir, 'flanneld.log'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** A pod namespace with a veth to the node, addressed from the node's subnet like the CNI bridge does. */
  private attachPod(node: LabNode): void {
    const env = node.subnetEnv;
    const subnet = env.FLANNEL_SUBNET;
    const mtu = env.FLANNEL_MTU;
    if (!subnet || !mtu) throw new Error(`node ${node.name}: subnet.env lacks FLANNEL_SUBNET or FLANNEL_MTU`);
    vethPair(node.ns, 'pod0', node.pod, 'eth0');
    const v4 = podAddresses(subnet);
    node.ns.ip('addr', 'add', `${v4.gateway}/${v4.prefix}`, 'dev', 'pod0');
    node.pod.ip('addr', 'add', `${v4.pod}/${v4.prefix}`, 'dev', 'eth0');
    node.pod.ip('link', 'set', 'eth0', 'mtu', mtu);
    node.pod.ip('route', 'add', 'default', 'via', v4.gateway);
    node.podIP = v4.pod;
    const subnet6 = env.FLANNEL_IPV6_SUBNET;
    if (this.opts.ipv6 && subnet6) {
      const v6 = podAddresses(subnet6);
      node.ns.ip('addr', 'add', `${v6.gateway}/${v6.prefix}`, 'dev', 'pod0', 'nodad');
      node.pod.ip('addr', 'add', `${v6.pod}/${v6.prefix}`, 'dev', 'eth0', 'nodad');
      node.pod.ip('-6', 'route', 'add', 'default', 'via', v6.gateway);
      node.podIPv6 = v6.pod;
    }
  }

  /** Pings from every pod to every other pod (v4, and v6 when enabled). */
  async checkAllPairs(count = 2): Promise<PairResult[]> {
    const results: PairResult[] = [];
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if (a === b) continue;
        const targets: Array<[4 | 6, string | undefined]> = [[4, b.podIP]];
        if (this.opts.ipv6) targets.push([6, b.podIPv6]);
        for (const [family, target] of targets) {
          results.push(await this.ping(a, b, family, target, count));
        }
      }
    }
    return results;
  }

  async ping(a: LabNode, b: LabNode, family: 4 | 6, target: string | undefined, count = 2): Promise<PairResult> {
    if (!target) return { from: a.name, to: b.name, family, ok: false, detail: 'no address' };
    // Retry briefly: a peer's lease event may still be on its way to a daemon that just started.
    let detail = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const out = a.pod.exec('ping', [`-${family}`, '-c', String(count), '-i', '0.2', '-W', '1', target], { timeoutMs: 10_000 });
        const rtt = /= [\d.]+\/([\d.]+)\//.exec(out);
        return { from: a.name, to: b.name, family, ok: true, detail: rtt ? `${rtt[1]} ms` : 'ok' };
      } catch (e) {
        detail = (e as Error).message.split('\n').find((l) => /unreachable|loss|Unreachable/.test(l)) ?? 'failed';
        await sleep(300);
      }
    }
    return { from: a.name, to: b.name, family, ok: false, detail };
  }

  /** Writes a state file so `flannelctl lab down` can remove a kept lab. */
  saveState(): string {
    mkdirSync(LAB_STATE_DIR, { recursive: true });
    const file = join(LAB_STATE_DIR, `${this.set.prefix}.json`);
    const state = { prefix: this.set.prefix, dir: this.dir, pids: [...this.nodes.map((n) => n.pid), this.etcdPid, this.apiServer?.child.pid].filter((p) => p !== undefined), namespaces: this.set.list() };
    writeFileSync(file, JSON.stringify(state, null, 2));
    return file;
  }

  async down(): Promise<void> {
    for (const node of this.nodes) await this.stopDaemon(node);
    await this.set.destroy();
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(join(LAB_STATE_DIR, `${this.set.prefix}.json`), { force: true });
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Removes every lab started with --keep (or only `prefix`): kills its daemons by PID, deletes namespaces. */
export async function labDown(prefix?: string): Promise<string[]> {
  const removed: string[] = [];
  if (!existsSync(LAB_STATE_DIR)) return removed;
  for (const f of readdirSync(LAB_STATE_DIR)) {
    if (!f.endsWith('.json') || (prefix && f !== `${prefix}.json`)) continue;
    const path = join(LAB_STATE_DIR, f);
    const state = JSON.parse(readFileSync(path, 'utf8')) as { prefix: string; dir: string; pids: number[] };
    for (const pid of state.pids) {
      if (isAlive(pid)) process.kill(pid, 'SIGTERM');
    }
    for (let i = 0; i < 50 && state.pids.some(isAlive); i++) await sleep(50);
    for (const pid of state.pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    removed.push(...NetnsSet.removeByPrefix(state.prefix));
    rmSync(state.dir, { recursive: true, force: true });
    rmSync(path, { force: true });
  }
  return removed;
}

/** The report table: nodes, subnets, MTUs, then the all-pairs matrix. */
export function formatLabReport(lab: Lab, results: PairResult[]): string {
  const rows = [['node', 'netns', 'public IP', 'subnet', 'IPv6 subnet', 'MTU', 'pod']];
  for (const n of lab.nodes) {
    rows.push([n.name, n.ns.name, n.underlayIP, n.subnetEnv.FLANNEL_SUBNET ?? '-', n.subnetEnv.FLANNEL_IPV6_SUBNET ?? '-', n.subnetEnv.FLANNEL_MTU ?? '-', n.podIP + (n.podIPv6 ? ` ${n.podIPv6}` : '')]);
  }
  const table = (r: string[][]): string => {
    const w = r[0]!.map((_, c) => Math.max(...r.map((row) => (row[c] ?? '').length)));
    return r.map((row) => row.map((cell, c) => cell.padEnd(w[c]!)).join('  ').trimEnd()).join('\n');
  };
  const families: Array<4 | 6> = lab.opts.ipv6 ? [4, 6] : [4];
  const out = [table(rows), ''];
  for (const fam of families) {
    const m = [[`ping IPv${fam}`, ...lab.nodes.map((n) => n.name)]];
    for (const a of lab.nodes) {
      m.push([a.name, ...lab.nodes.map((b) => (a === b ? '-' : results.find((r) => r.from === a.name && r.to === b.name && r.family === fam)?.ok ? 'ok' : 'FAIL'))]);
    }
    out.push(table(m), '');
  }
  const failed = results.filter((r) => !r.ok);
  out.push(`${results.length - failed.length}/${results.length} pod-to-pod pairs passed`);
  for (const f of failed) out.push(`  FAIL ${f.from} -> ${f.to} IPv${f.family}: ${f.detail}`);
  return out.join('\n');
}
