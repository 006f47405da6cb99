// `flannelctl bench`: the same 2-node netns lab per backend, measured in one run on one machine so
// the figures compare. Targets (ours and kernel ones) are set up here; measuring is iperf3 and ping
// run inside the pod namespaces, plus /proc of the daemon processes. Everything a target creates
// lives in namespaces with a per-run prefix and goes away in teardown(), also on failure or Ctrl-C.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg, release } from 'node:os';
import { encodeLeaseFile } from '../subnet/file.js';
import { parseIP } from '../ip/index.js';
import { Lab, isAlive } from './lab.js';
import { NetnsSet, vethPair, type Namespace } from './netns.js';

export const METRICS = ['tcp1_gbps', 'tcp4_gbps', 'udp_kpps', 'rtt_us_p50', 'rtt_us_p99', 'cpu_s_per_gb', 'rss_mib', 'rss_mib_1000peers'] as const;
export type Metric = (typeof METRICS)[number];
/** Metrics where less is better (ratios and chart read the other way round). */
export const LOWER_IS_BETTER: ReadonlySet<Metric> = new Set(['rtt_us_p50', 'rtt_us_p99', 'cpu_s_per_gb', 'rss_mib', 'rss_mib_1000peers']);
/** Metrics that only exist for targets with a daemon (kernel datapaths have no process to measure). */
const DAEMON_METRICS: ReadonlySet<Metric> = new Set(['cpu_s_per_gb', 'rss_mib', 'rss_mib_1000peers']);

export const BUILTIN_TARGETS = ['raw', 'vxlan', 'host-gw', 'udp', 'udp-nooffload'] as const;

export interface BenchResult {
  backend: string;
  metric: Metric;
  /** Median of runs; null when the target has no such figure (e.g. cpu of a kernel datapath) or it failed. */
  value: number | null;
  runs: number[];
}

export interface MachineInfo {
  kernel: string;
  cpu: string;
  cores: number;
  node: string;
  loadavgStart: number[];
  loadavgEnd?: number[];
}

export interface BenchReport {
  tool: 'flannelctl bench';
  started: string;
  quick: boolean;
  secondsPerTest: number;
  machine: MachineInfo;
  backends: string[];
  results: BenchResult[];
  /** What each target is (kernel vxlan set up by hand, etc.) and any failure. */
  notes: Record<string, string>;
  /** Namespace name prefixes the run used, one per target; all removed when the run ends. */
  prefixes: string[];
}

export interface BenchOptions {
  /** Targets to run; default BUILTIN_TARGETS plus flanneld-udp when flanneld is given. */
  targets?: string[];
  /** Another flanneld-compatible binary (e.g. stock flannel); runs with an etcd store. */
  flanneld?: string;
  /** 1 s per measurement instead of secondsPerTest. */
  quick?: boolean;
  secondsPerTest?: number;
  /** Repetitions of each throughput test (the reported value is the median). */
  repeat?: number;
  log?: (line: string) => void;
}

/** One measured setup: where the client and server run, and the daemons whose cost we count. */
interface Target {
  client: Namespace;
  server: Namespace;
  serverIP: string;
  daemonPids: () => number[];
  /** For our udp: largest daemon RSS in a lab whose store already holds 1,000 leases. */
  rssWithPeers?: () => Promise<number>;
  note: string;
  /** Name prefix of every namespace this target made (reported, so a caller can check teardown). */
  prefix: string;
  teardown(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export function machineInfo(): MachineInfo {
  const c = cpus();
  return { kernel: release(), cpu: c[0]?.model.trim() ?? 'unknown', cores: c.length, node: process.version, loadavgStart: loadavg().map((x) => Math.round(x * 100) / 100) };
}

// ---- targets ----

const UNDERLAY = (i: number): string => `198.18.0.${10 + i}`;
/** Pod subnets of the hand-built targets, inside the lab's overlay network. */
const POD_NET = (i: number): { gw: string; pod: string; subnet: string } => ({ gw: `198.19.${i}.1`, pod: `198.19.${i}.2`, subnet: `198.19.${i}.0/24` });

function sysctl(ns: Namespace, key: string, value: string): void {
  ns.exec('sh', ['-c', `echo ${value} > /proc/sys/${key}`]);
}

/** Underlay bridge + two node namespaces; with pods, a pod namespace behind each node. */
function kernelTopology(set: NetnsSet, withPods: boolean, podMtu: number): { nodes: Namespace[]; pods: Namespace[] } {
  const ul = set.add('ul');
  ul.ip('link', 'add', 'br0', 'type', 'bridge');
  ul.ip('link', 'set', 'br0', 'up');
  const nodes: Namespace[] = [];
  const pods: Namespace[] = [];
  for (const i of [1, 2]) {
    const ns = set.add(`n${i}`);
    vethPair(ns, 'eth0', ul, `v${i}`);
    ul.ip('link', 'set', `v${i}`, 'master', 'br0');
    ns.ip('addr', 'add', `${UNDERLAY(i)}/24`, 'dev', 'eth0');
    nodes.push(ns);
    if (!withPods) continue;
    sysctl(ns, 'net/ipv4/ip_forward', '1');
    const pod = set.add(`p${i}`);
    vethPair(ns, 'pod0', pod, 'eth0');
    const a = POD_NET(i);
    ns.ip('addr', 'add', `${a.gw}/24`, 'dev', 'pod0');
    pod.ip('addr', 'add', `${a.pod}/24`, 'dev', 'eth0');
    pod.ip('link', 'set', 'eth0', 'mtu', String(podMtu));
    pod.ip('route', 'add', 'default', 'via', a.gw);
    pods.push(pod);
  }
  return { nodes, pods };
}

function kernelTarget(kind: 'raw' | 'vxlan' | 'host-gw'): Target {
  const set = new NetnsSet();
  try {
    if (kind === 'raw') {
      const { nodes } = kernelTopology(set, false, 1500);
      return { client: nodes[0]!, server: nodes[1]!, serverIP: UNDERLAY(2), daemonPids: () => [], note: 'underlay addresses directly (veth + bridge), no overlay', prefix: set.prefix, teardown: () => set.destroy() };
    }
    const { nodes, pods } = kernelTopology(set, true, kind === 'vxlan' ? 1450 : 1500);
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
    const note = kind === 'vxlan' ? 'kernel vxlan set up with ip commands as flannel vxlan does (VNI 1, port 8472, MTU 1450)' : 'plain routes via the peer underlay address, as flannel host-gw does';
    return { client: pods[0]!, server: pods[1]!, serverIP: POD_NET(2).pod, daemonPids: () => [], note, prefix: set.prefix, teardown: () => set.destroy() };
  } catch (e) {
    void set.destroy();
    throw e;
  }
}

/** A /28 per node so 1,000 peer leases fit in 198.19.0.0/16 for the RSS-with-many-peers figure. */
const DAEMON_SUBNET_LEN = 28;

async function daemonTarget(name: string, o: BenchOptions): Promise<Target> {
  const stock = name.startsWith('flanneld-');
  const lab = new Lab({
    nodes: 2,
    backend: 'udp',
    ipv6: false,
    subnetLen: DAEMON_SUBNET_LEN,
    backendOptions: name === 'udp-nooffload' ? { Offload: false } : undefined,
    flanneld: stock && o.flanneld ? [o.flanneld] : undefined,
    // flanneld proper has no embedded store: give it a real etcd inside the lab.
    store: stock ? 'etcd' : 'file',
  });
  try {
    await lab.up();
  } catch (e) {
    await lab.down();
    throw e;
  }
  const [a, b] = lab.nodes as [(typeof lab.nodes)[0], (typeof lab.nodes)[0]];
  const offloadLine = lab.daemonLog(a).split('\n').find((l) => l.includes('offloads')) ?? '';
  const target: Target = {
    client: a.pod,
    server: b.pod,
    serverIP: b.podIP,
    daemonPids: () => lab.nodes.map((n) => n.pid).filter((p): p is number => p !== undefined && isAlive(p)),
    note: stock ? `${o.flanneld} with the same net-conf, etcd store` : `flannelts udp${offloadLine ? ': ' + offloadLine.replace(/^.*udp: /, '') : ''}`,
    prefix: lab.set.prefix,
    teardown: () => lab.down(),
  };
  if (name === 'udp') target.rssWithPeers = () => rssWith1000Peers(o);
  return target;
}

/**
 * A fresh 2-node lab whose file store is seeded with 998 more leases before the daemons start, so each
 * daemon loads 999 peers in one scan (writing them one by one while it runs would measure the file
 * store's burst of re-scans instead). Largest VmRSS after the tables settle.
 */
async function rssWith1000Peers(o: BenchOptions): Promise<number> {
  const lab = new Lab({
    nodes: 2,
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

// ---- measurements ----

interface Iperf {
  bps: number;
  bytes: number;
  pps?: number;
}

function iperfClient(t: Target, args: string[], seconds: number): Iperf {
  const out = t.client.exec('iperf3', ['-c', t.serverIP, '-t', String(seconds), '-J', ...args], { timeoutMs: (seconds + 20) * 1000 });
  const j = JSON.parse(out) as {
    error?: string;
    end?: {
      sum_received?: { bits_per_second: number; bytes: number };
      sum?: { packets?: number; lost_packets?: number; seconds?: number; bits_per_second: number; bytes: number };
    };
  };
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  const end = j.end ?? {};
  if (args.includes('-u')) {
    const s = end.sum;
    if (!s || s.packets === undefined || !s.seconds) throw new Error('iperf3 -u: no end.sum in the JSON');
    // packets counts what the client sent; the server reports what it lost of them.
    const received = s.packets - (s.lost_packets ?? 0);
    return { bps: s.bits_per_second, bytes: s.bytes, pps: received / s.seconds };
  }
  const r = end.sum_received;
  if (!r) throw new Error('iperf3: no end.sum_received in the JSON');
  return { bps: r.bits_per_second, bytes: r.bytes };
}

/**
 * One iperf3 test against a fresh one-shot server (`-s -1`): a server that a 64-byte UDP flood
 * wedged cannot spoil the next test. One retry, since other load on the machine can time a test out.
 */
async function iperf(t: Target, args: string[], seconds: number): Promise<Iperf> {
  let last: Error | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    const server = t.server.spawn('iperf3', ['-s', '-1', '-B', t.serverIP], { stdio: 'ignore' });
    try {
      let listening = false;
      for (let i = 0; i < 50 && !listening; i++) {
        listening = t.server.exec('ss', ['-Hltn', 'sport = :5201']).includes('5201');
        if (!listening) await sleep(100);
      }
      if (!listening) throw new Error('iperf3 server did not start');
      return iperfClient(t, args, seconds);
    } catch (e) {
      last = e as Error;
    } finally {
      if (server.exitCode === null && server.signalCode === null) {
        server.kill('SIGTERM');
        await new Promise((r) => server.once('exit', r));
      }
    }
  }
  throw last ?? new Error('iperf3 failed');
}

/** utime+stime of a process in seconds (all threads). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the ")" of the command name: state is field 3, utime 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return ticks / 100; // USER_HZ is 100 on every Linux ABI Node supports
}

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function pingRtts(t: Target, count: number): number[] {
  let out = '';
  try {
    out = t.client.exec('ping', ['-c', String(count), '-i', '0.01', '-W', '1', t.serverIP], { timeoutMs: count * 100 + 10_000 });
  } catch (e) {
    out = (e as Error).message; // some loss still leaves usable samples
  }
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000);
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

async function measure(name: string, t: Target, o: BenchOptions, add: (m: Metric, runs: number[]) => void): Promise<void> {
  const secs = o.quick ? 1 : (o.secondsPerTest ?? 5);
  const repeat = o.quick ? 1 : (o.repeat ?? 1);
  const log = o.log ?? (() => {});
  // Warm-up: ARP/neighbour entries and peer tables in place before anything is timed.
  pingRtts(t, 3);
  // RTT first, on an otherwise idle path: after the 64-byte UDP flood the 8 MiB socket buffers of a
  // userspace data plane still hold a backlog for a while, which would be measured instead.
  const rtts = pingRtts(t, o.quick ? 50 : 200);
  if (rtts.length === 0) throw new Error('ping: no replies');
  add('rtt_us_p50', [percentile(rtts, 50)]);
  add('rtt_us_p99', [percentile(rtts, 99)]);
  log(`  ${name}: rtt p50 ${percentile(rtts, 50).toFixed(0)} us p99 ${percentile(rtts, 99).toFixed(0)} us`);
  const omit = secs >= 3 ? ['-O', '1'] : [];
  const pids = t.daemonPids();
  const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  let bytes = 0;
  const tcp1: number[] = [];
  const tcp4: number[] = [];
  for (let r = 0; r < repeat; r++) {
    const one = await iperf(t, omit, secs);
    tcp1.push(one.bps / 1e9);
    bytes += one.bytes;
    const four = await iperf(t, ['-P', '4', ...omit], secs);
    tcp4.push(four.bps / 1e9);
    bytes += four.bytes;
  }
  const cpu1 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  add('tcp1_gbps', tcp1);
  add('tcp4_gbps', tcp4);
  log(`  ${name}: tcp1 ${median(tcp1).toFixed(2)} Gbit/s, tcp4 ${median(tcp4).toFixed(2)} Gbit/s`);
  if (pids.length) add('cpu_s_per_gb', [(cpu1 - cpu0) / (bytes / 1e9)]);
  // Small-packet rate: 64-byte payloads at an unreachable target rate; what arrives is the figure.
  const udp = await iperf(t, ['-u', '-l', '64', '-b', '0'], secs);
  add('udp_kpps', [(udp.pps ?? 0) / 1000]);
  log(`  ${name}: udp ${((udp.pps ?? 0) / 1000).toFixed(0)} kpps`);
  if (pids.length) add('rss_mib', [Math.max(...t.daemonPids().map(rssMiB))]);
  if (t.rssWithPeers) add('rss_mib_1000peers', [await t.rssWithPeers()]);
}

/** Runs every target in turn; a target that fails gets null values and a note, the others still run. */
export async function runBench(o: BenchOptions, onTarget?: (teardown: (() => Promise<void>) | undefined) => void): Promise<BenchReport> {
  const log = o.log ?? (() => {});
  const targets = o.targets ?? [...BUILTIN_TARGETS, ...(o.flanneld ? ['flanneld-udp'] : [])];
  const report: BenchReport = {
    tool: 'flannelctl bench',
    started: new Date().toISOString(),
    quick: o.quick ?? false,
    secondsPerTest: o.quick ? 1 : (o.secondsPerTest ?? 5),
    machine: machineInfo(),
    backends: targets,
    results: [],
    notes: {},
    prefixes: [],
  };
  for (const name of targets) {
    log(`${name}: setting up`);
    const runs = new Map<Metric, number[]>();
    let target: Target | undefined;
    try {
      if (name === 'raw' || name === 'vxlan' || name === 'host-gw') target = kernelTarget(name);
      else if (name === 'udp' || name === 'udp-nooffload' || name.startsWith('flanneld-')) {
        if (name.startsWith('flanneld-') && !o.flanneld) throw new Error('needs --flanneld PATH');
        target = await daemonTarget(name, o);
      } else throw new Error(`unknown target ${name}`);
      onTarget?.(target.teardown);
      report.prefixes.push(target.prefix);
      report.notes[name] = target.note;
      await measure(name, target, o, (m, r) => runs.set(m, r));
    } catch (e) {
      const msg = (e as Error).message.split('\n')[0] ?? 'failed';
      report.notes[name] = `${report.notes[name] ? report.notes[name] + '; ' : ''}FAILED: ${msg}`;
      log(`${name}: FAILED: ${msg}`);
    } finally {
      if (target) await target.teardown();
      onTarget?.(undefined);
    }
    for (const m of METRICS) {
      if (DAEMON_METRICS.has(m) && !runs.has(m)) continue; // kernel datapaths: no daemon to measure
      const r = runs.get(m) ?? [];
      report.results.push({ backend: name, metric: m, value: r.length ? round(median(r)) : null, runs: r.map(round) });
    }
  }
  report.machine.loadavgEnd = loadavg().map((x) => Math.round(x * 100) / 100);
  return report;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

// ---- output ----

function valueOf(r: BenchReport, backend: string, m: Metric): number | null | undefined {
  return r.results.find((x) => x.backend === backend && x.metric === m)?.value;
}

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** The markdown table: one row per backend, each figure with its ratio to kernel vxlan. */
export function formatMarkdown(r: BenchReport): string {
  const head = ['backend', ...METRICS];
  const rows = [head, head.map(() => '---')];
  for (const b of r.backends) {
    rows.push([
      b,
      ...METRICS.map((m) => {
        const v = valueOf(r, b, m);
        if (v === undefined) return '-';
        if (v === null) return 'n/a';
        const base = valueOf(r, 'vxlan', m);
        const ratio = base && b !== 'vxlan' ? ` (${(v / base).toFixed(2)}x)` : '';
        return fmt(v) + ratio;
      }),
    ]);
  }
  const widths = head.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const table = rows.map((row) => '| ' + row.map((cell, c) => (cell === '---' ? '-'.repeat(widths[c]!) : cell.padEnd(widths[c]!))).join(' | ') + ' |').join('\n');
  const m = r.machine;
  const lines = [
    `flannelctl bench, ${r.started}, ${r.quick ? 'quick (1 s per test)' : `${r.secondsPerTest} s per test`}`,
    `machine: Linux ${m.kernel}, ${m.cpu}, ${m.cores} cores, node ${m.node}, load average ${m.loadavgStart.join(' ')} at start, ${(m.loadavgEnd ?? []).join(' ')} at end`,
    '',
    table,
    '',
    'Ratios in parentheses are against kernel vxlan in the same run. cpu_s_per_gb: daemon CPU seconds (all nodes) per GB moved by the TCP tests; rss: largest daemon VmRSS.',
  ];
  for (const b of r.backends) if (r.notes[b]) lines.push(`- ${b}: ${r.notes[b]}`);
  return lines.join('\n') + '\n';
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A hand-written SVG: one panel per metric, one horizontal bar per backend. */
export function formatSvg(r: BenchReport): string {
  const panelW = 360, barH = 16, gap = 4, labelW = 110, pad = 10;
  const metrics = METRICS.filter((m) => r.backends.some((b) => typeof valueOf(r, b, m) === 'number'));
  const panelH = 28 + r.backends.length * (barH + gap) + pad;
  const cols = 2;
  const width = cols * panelW + pad;
  const height = 40 + Math.ceil(metrics.length / cols) * panelH;
  const colors = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1'];
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${pad}" y="20" font-size="13" font-weight="bold">${esc(`flannelctl bench ${r.started.slice(0, 16)} - ${r.machine.cpu}, ${r.machine.cores} cores, Linux ${r.machine.kernel}`)}</text>`,
  ];
  metrics.forEach((m, i) => {
    const x0 = pad + (i % cols) * panelW;
    const y0 = 40 + Math.floor(i / cols) * panelH;
    const vals = r.backends.map((b) => valueOf(r, b, m));
    const max = Math.max(...vals.map((v) => (typeof v === 'number' ? v : 0)), 1e-9);
    out.push(`<text x="${x0}" y="${y0 + 14}" font-weight="bold">${esc(m)}${LOWER_IS_BETTER.has(m) ? ' (lower is better)' : ''}</text>`);
    r.backends.forEach((b, j) => {
      const y = y0 + 24 + j * (barH + gap);
      const v = vals[j];
      out.push(`<text x="${x0}" y="${y + barH - 4}">${esc(b)}</text>`);
      if (typeof v !== 'number') {
        out.push(`<text x="${x0 + labelW}" y="${y + barH - 4}" fill="#888">n/a</text>`);
        return;
      }
      const w = Math.max(1, ((panelW - labelW - 60) * v) / max);
      out.push(`<rect x="${x0 + labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${colors[j % colors.length]}"/>`);
      out.push(`<text x="${(x0 + labelW + w + 4).toFixed(1)}" y="${y + barH - 4}">${esc(fmt(v))}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Writes bench-<stamp>.{md,json,svg} and latest.* into dir; returns the paths. */
export function saveReport(r: BenchReport, dir: string): string[] {
  const stamp = r.started.replace(/[:.]/g, '-').slice(0, 19);
  const files: Array<[string, string]> = [
    ['md', formatMarkdown(r)],
    ['json', JSON.stringify(r, null, 2) + '\n'],
    ['svg', formatSvg(r)],
  ];
  const paths: string[] = [];
  for (const [ext, text] of files) {
    for (const base of [`bench-${stamp}`, 'latest']) {
      const p = join(dir, `${base}.${ext}`);
      writeFileSync(p, text);
      if (base !== 'latest') paths.push(p);
    }
  }
  return paths;
}
