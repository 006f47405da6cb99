// `flannelctl lab`: N node namespaces on an underlay bridge, each running a real flanneld process
// against one embedded file lease store, each with a pod namespace behind it; then all-pairs
// pod-to-pod checks. Addresses come only from 198.18.0.0/15 and 2001:db8::/32 (the network rule).
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, existsSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsSet, vethPair, type Namespace } from './netns.js';

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
  prefix?: string;
  /**
   * Lease store: 'file' (the embedded store in a temp dir, default) or 'etcd' (a real etcd started
   * inside the lab's underlay namespace at 198.18.0.1:2379, flannel's keys under /coreos.com/network).
   */
  store?: 'file' | 'etcd';
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
  dir: string;
  subnetEnv: Record<string, string>;
  podIP: string;
  podIPv6?: string;
  pid?: number;
}

export interface PairResult {
  from: string;
  to: string;
  family: 4 | 6;
  ok: boolean;
  detail: string;
}

export const ourFlanneld = (): string[] => {
  const here = dirname(fileURLToPath(import.meta.url));
  return [process.execPath, join(here, '..', 'cli', 'flanneld.js')];
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
  private readonly log: (line: string) => void;

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
    this.log(`underlay bridge br0 in ${this.underlay.name}, ${LAB_UNDERLAY_V4}${this.opts.ipv6 ? ' + ' + LAB_UNDERLAY_V6 : ''}`);

    for (let i = 1; i <= n; i++) {
      const name = `n${i}`;
      const ns = this.set.add(name);
      vethPair(ns, 'eth0', this.underlay, `v${i}`);
      this.underlay.ip('link', 'set', `v${i}`, 'master', 'br0');
      const underlayIP = `198.18.0.${10 + i}`;
      ns.ip('addr', 'add', `${underlayIP}/24`, 'dev', 'eth0');
      let underlayIPv6: string | undefined;
      if (this.opts.ipv6) {
        underlayIPv6 = `2001:db8::${(10 + i).toString(16)}`;
        ns.ip('addr', 'add', `${underlayIPv6}/64`, 'dev', 'eth0', 'nodad');
      }
      // A default route on the underlay, as a real node has one (flanneld's default interface choice).
      ns.ip('route', 'add', 'default', 'dev', 'eth0');
      this.sysctl(ns, 'net/ipv4/ip_forward', '1');
      if (this.opts.ipv6) this.sysctl(ns, 'net/ipv6/conf/all/forwarding', '1');
      const dir = join(this.dir, name);
      mkdirSync(dir, { recursive: true });
      const pod = this.set.add(`p${i}`);
      this.nodes.push({ name, ns, pod, underlayIP, underlayIPv6, dir, subnetEnv: {}, podIP: '' });
    }
    for (const node of this.nodes) this.startDaemon(node);
    await this.waitForSubnets();
    for (const node of this.nodes) this.attachPod(node);
  }

  /** A single-member etcd in the underlay namespace, with the lab's net-conf under <prefix>/config. */
  private async startEtcd(): Promise<void> {
    this.underlay.ip('addr', 'add', `${LAB_ETCD_IP}/24`, 'dev', 'br0');
    const dataDir = join(this.dir, 'etcd');
    const peer = `http://${LAB_ETCD_IP}:2380`;
    const logFd = openSync(join(this.dir, 'etcd.log'), 'a');
    try {
      this.underlay.spawn('etcd', [
        '--name', 'lab', '--data-dir', dataDir,
        '--listen-client-urls', LAB_ETCD_ENDPOINT, '--advertise-client-urls', LAB_ETCD_ENDPOINT,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `lab=${peer}`,
        '--log-level', 'warn',
      ], { stdio: ['ignore', logFd, logFd], detached: true });
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

  /**
   * Talks to the lab's etcd through its JSON gateway from inside the underlay namespace (the lab's
   * addresses are not reachable from the namespace this process runs in).
   */
  etcdRequest(path: string, body: Record<string, string>): Record<string, unknown> {
    const script = `fetch(${JSON.stringify(LAB_ETCD_ENDPOINT + path)},{method:'POST',body:process.argv[1]}).then(async r=>{if(!r.ok)throw new Error(r.status+' '+await r.text());process.stdout.write(await r.text())}).catch(e=>{console.error(e.message);process.exit(1)})`;
    const out = this.underlay.exec(process.execPath, ['-e', script, JSON.stringify(body)], { timeoutMs: 5000 });
    return JSON.parse(out) as Record<string, unknown>;
  }

  async etcdPut(key: string, value: string): Promise<void> {
    this.etcdRequest('/v3/kv/put', { key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') });
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
    const args = [
      ...cmd.slice(1),
      '-iface=eth0',
      ...(this.opts.store === 'etcd' ? [`-etcd-endpoints=${LAB_ETCD_ENDPOINT}`, `-etcd-prefix=${LAB_ETCD_PREFIX}`] : [`-subnet-store-dir=${this.storeDir}`]),
      `-subnet-file=${join(node.dir, 'subnet.env')}`,
      ...(this.opts.daemonArgs ?? []),
    ];
    const logFd = openSync(join(node.dir, 'flanneld.log'), 'a');
    try {
      const child = node.ns.spawn(cmd[0]!, args, { stdio: ['ignore', logFd, logFd], detached: true });
      node.pid = child.pid;
    } finally {
      closeSync(logFd);
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
    const state = { prefix: this.set.prefix, dir: this.dir, pids: this.nodes.map((n) => n.pid).filter((p) => p !== undefined), namespaces: this.set.list() };
    writeFileSync(file, JSON.stringify(state, null, 2));
    return file;
  }

  async down(): Promise<void> {
    for (const node of this.nodes) await this.stopDaemon(node);
    await this.set.destroy();
    rmSync(this.dir, { recursive: true, force: true });
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
  const { readdirSync } = await import('node:fs');
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
