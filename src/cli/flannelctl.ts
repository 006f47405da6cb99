#!/usr/bin/env node
// flannelctl: run, debug and benchmark Flannel backends. `lab` is the main job.
import { createWriteStream, mkdirSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { Lab, formatLabReport, labDown } from '../lab/lab.js';
import { VERSION } from '../version.js';
import { DEFAULT_STATUS_SOCKET, fetchStatus, type StatusSnapshot } from '../status.js';
import { computeRates, formatStatus } from './status-format.js';
import { DROP_REASONS } from '../native/engine.js';
import { runCaptureClient } from '../capture/client.js';
import {
  DEFAULT_SNAPLEN, describeRequest, parseCount, parseDirection, parseDuration, parseFormat, parsePeer, parseReason, parseSnaplen, type CaptureRequest,
} from '../capture/options.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number >= 1');
  return n;
}

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number >= 0');
  return n;
}

interface LabCliOptions {
  nodes: number;
  backend: string;
  ipv6: boolean;
  keep: boolean;
  timeout: number;
  flanneld?: string;
  store: 'file' | 'etcd' | 'kube';
  directRouting: boolean;
  routed: boolean;
  ipMasq: boolean;
  userspaceNodes: number;
}

function requireRoot(what: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    process.stderr.write(`flannelctl ${what}: needs root (network namespaces and TUN devices); run it with sudo\n`);
    process.exit(1);
  }
}

async function runLab(o: LabCliOptions): Promise<number> {
  requireRoot('lab');
  const lab = new Lab({
    nodes: o.nodes,
    backend: o.backend,
    ipv6: o.ipv6,
    store: o.store,
    routed: o.routed,
    backendOptions: o.directRouting ? { DirectRouting: true } : undefined,
    daemonArgs: o.ipMasq ? ['-ip-masq'] : undefined,
    // The last N nodes run the userspace VXLAN VTEP, the others kernel vxlan devices.
    nodeArgs: o.userspaceNodes ? (i) => (i >= o.nodes - o.userspaceNodes ? ['-vxlan-userspace'] : []) : undefined,
    startTimeoutSec: o.timeout,
    flanneld: o.flanneld ? [o.flanneld] : undefined,
    log: (l) => process.stdout.write(l + '\n'),
  });
  let tearingDown = false;
  const teardown = async (code: number): Promise<never> => {
    if (!tearingDown) {
      tearingDown = true;
      process.stdout.write('\ntearing down the lab...\n');
      await lab.down();
    }
    process.exit(code);
  };
  process.once('SIGINT', () => void teardown(130));
  process.once('SIGTERM', () => void teardown(143));
  try {
    process.stdout.write(`flannelctl lab: ${o.nodes} nodes, backend ${o.backend}${o.ipv6 ? ', IPv4+IPv6' : ''}${o.routed ? ', routed underlay' : ''}${o.directRouting ? ', DirectRouting' : ''}${o.ipMasq ? ', -ip-masq' : ''}${o.userspaceNodes ? `, ${o.userspaceNodes} userspace VTEP node(s)` : ''}, ${o.store} lease store, prefix ${lab.set.prefix}\n`);
    await lab.up();
    const results = await lab.checkAllPairs();
    process.stdout.write('\n' + formatLabReport(lab, results) + '\n');
    const failed = results.some((r) => !r.ok);
    if (failed) {
      for (const n of lab.nodes) process.stdout.write(`\n--- ${n.name} flanneld log (last lines) ---\n${lab.daemonLog(n, 15)}\n`);
    }
    if (o.keep) {
      const state = lab.saveState();
      process.stdout.write(`\nlab kept running (state in ${state}).\n`);
      for (const n of lab.nodes) process.stdout.write(`  sudo ip netns exec ${n.pod.name} ping ${lab.nodes.find((m) => m !== n)?.podIP ?? n.podIP}\n`);
      process.stdout.write('remove it with: sudo npx flannelctl lab down\n');
      return failed ? 1 : 0;
    }
    await lab.down();
    return failed ? 1 : 0;
  } catch (e) {
    process.stderr.write(`flannelctl lab: ${(e as Error).message}\n`);
    if (!tearingDown) await lab.down();
    return 1;
  }
}

const program = new Command();
program.name('flannelctl').description('Run, debug and benchmark Flannel backends').version(VERSION);

const lab = program
  .command('lab')
  .description('build a multi-node overlay in network namespaces on this host and check pod-to-pod connectivity')
  .addOption(new Option('-n, --nodes <n>', 'number of nodes').argParser(positiveInt).default(3))
  .addOption(new Option('-b, --backend <type>', 'flannel backend').choices(['udp', 'vxlan', 'host-gw']).default('udp'))
  .option('--ipv6', 'dual-stack: also IPv6 underlay and overlay (2001:db8::/32)', false)
  .option('--keep', 'leave the lab running; remove it later with `flannelctl lab down`', false)
  .addOption(new Option('--timeout <seconds>', 'seconds to wait for every node to get its lease').argParser(positiveInt).default(30))
  .option('--flanneld <path>', 'run this flanneld-compatible binary instead of ours')
  .addOption(new Option('--store <store>', 'lease store: embedded file store, a real etcd inside the lab, or kube (-kube-subnet-mgr against a fake API server inside the lab)').choices(['file', 'etcd', 'kube']).default('file'))
  .option('--direct-routing', 'vxlan: pass "DirectRouting": true (direct routes to peers on the same segment)', false)
  .option('--routed', 'two underlay segments joined by a router namespace (nodes split between them)', false)
  .option('--ip-masq', 'run every flanneld with -ip-masq', false)
  .addOption(new Option('--userspace-nodes <n>', 'vxlan: the last N nodes run the userspace VXLAN VTEP (-vxlan-userspace), the others kernel vxlan').argParser(nonNegativeInt).default(0))
  .action(async (o: LabCliOptions) => {
    if (o.userspaceNodes > 0 && o.backend !== 'vxlan') {
      process.stderr.write('flannelctl lab: --userspace-nodes needs --backend vxlan\n');
      process.exitCode = 2;
      return;
    }
    if (o.userspaceNodes > o.nodes) {
      process.stderr.write(`flannelctl lab: --userspace-nodes ${o.userspaceNodes} is more than --nodes ${o.nodes}\n`);
      process.exitCode = 2;
      return;
    }
    process.exitCode = await runLab(o);
  });

lab
  .command('down')
  .description('remove labs left running with --keep')
  .argument('[prefix]', 'only the lab with this prefix')
  .action(async (prefix?: string) => {
    requireRoot('lab down');
    const removed = await labDown(prefix);
    process.stdout.write(removed.length ? `removed ${removed.join(', ')}\n` : 'no kept lab found\n');
  });

program
  .command('status')
  .description('show the running daemon: lease, backend, peers with per-peer counters, drops, routes')
  .option('-s, --socket <path>', 'the daemon\'s -status-socket', DEFAULT_STATUS_SOCKET)
  .option('--json', 'print the raw snapshot as JSON', false)
  .addOption(new Option('-w, --watch [seconds]', 'refresh every N seconds and show rates (Ctrl-C to stop)').argParser(positiveInt))
  .action(async (o: { socket: string; json: boolean; watch?: number | true }) => {
    try {
      if (o.watch === undefined) {
        const s = await fetchStatus(o.socket);
        process.stdout.write((o.json ? JSON.stringify(s, null, 2) : formatStatus(s)) + '\n');
        return;
      }
      const every = o.watch === true ? 1 : o.watch;
      let prev: StatusSnapshot = await fetchStatus(o.socket);
      for (;;) {
        await new Promise((r) => setTimeout(r, every * 1000));
        const cur = await fetchStatus(o.socket);
        const text = o.json ? JSON.stringify(cur) : formatStatus(cur, computeRates(prev, cur, every));
        process.stdout.write(o.json ? text + '\n' : `\x1b[2J\x1b[H${text}\n`);
        prev = cur;
      }
    } catch (e) {
      process.stderr.write(`flannelctl status: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
  });

/** A capture option validator as a commander argument parser (its message becomes commander's one-line error). */
function arg<T>(parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try {
      return parse(v);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}
const many = <T>(parse: (v: string) => T) => (v: string, prev: T[] = []): T[] => [...prev, arg(parse)(v)];

interface CaptureCliOptions {
  write: string;
  socket: string;
  peer?: string[];
  drops: boolean;
  reason?: string[];
  direction?: 'tx' | 'rx';
  count?: number;
  duration?: number;
  snaplen: number;
  format: 'pcapng' | 'pcap';
}

async function runCaptureCli(o: CaptureCliOptions): Promise<number> {
  const say = (l: string): void => void process.stderr.write(`flannelctl capture: ${l}\n`);
  const toStdout = o.write === '-';
  if (toStdout && process.stdout.isTTY) {
    say('refusing to write pcap to a terminal; give -w FILE, or pipe it: -w - | tcpdump -r -');
    return 2;
  }
  const r: CaptureRequest = {
    peers: o.peer ?? [], drops: o.drops, reasons: o.reason ?? [], direction: o.direction, count: o.count, durationSec: o.duration, snaplen: o.snaplen, format: o.format,
  };
  const out = toStdout ? process.stdout : createWriteStream(o.write, { mode: 0o600 });
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  try {
    const res = await runCaptureClient({ socket: o.socket, request: r, out, signal: stop.signal, onStart: (dev) => say(`capturing on ${dev}: ${describeRequest(r)}`) });
    say(res.interrupted ? `stopped; ${res.bytes} bytes written` : `${res.packets ?? '?'} packets captured, ${res.lost ?? '?'} lost to a full capture buffer (${res.end ?? '?'})`);
    return 0;
  } catch (e) {
    say((e as Error).message);
    return 1;
  } finally {
    if (!toStdout) await new Promise<void>((resolve) => out.end(resolve));
  }
}

program
  .command('capture')
  .description('pcap of overlay traffic from inside the data plane (udp backend): packets each way and dropped packets with their reason')
  .option('-w, --write <file>', 'pcap file to write, - for stdout (e.g. -w - | tcpdump -r -)', '-')
  .option('-s, --socket <path>', 'the daemon\'s -status-socket', DEFAULT_STATUS_SOCKET)
  .addOption(new Option('--peer <subnet|ip>', 'only packets of this peer: its subnet or public IP, or any inner address in it (repeatable)').argParser(many(parsePeer)))
  .option('--drops', 'only dropped packets (each with its drop reason)', false)
  .addOption(new Option('--reason <name>', `only drops with this reason (repeatable; implies --drops): ${DROP_REASONS.join(', ')}`).argParser(many((v) => parseReason(v, DROP_REASONS))))
  .addOption(new Option('--direction <dir>', 'only one side: tx (to peers) or rx (from peers)').argParser(arg(parseDirection)))
  .addOption(new Option('-c, --count <n>', 'stop after n packets').argParser(arg(parseCount)))
  .addOption(new Option('--duration <seconds>', 'stop after this many seconds').argParser(arg(parseDuration)))
  .addOption(new Option('--snaplen <bytes>', 'bytes kept per packet').argParser(arg(parseSnaplen)).default(DEFAULT_SNAPLEN))
  .addOption(new Option('--format <format>', 'pcapng (packet comments carry direction, peer, drop reason) or classic pcap').argParser(arg(parseFormat)).default('pcapng'))
  .action(async (o: CaptureCliOptions) => {
    process.exitCode = await runCaptureCli(o);
  });

interface BenchCliOptions {
  out: string;
  quick: boolean;
  seconds: number;
  repeat: number;
  flanneld?: string;
  only?: string;
  steadySeconds?: number;
}

async function runBenchCli(o: BenchCliOptions): Promise<number> {
  requireRoot('bench');
  const { runBench } = await import('../lab/bench.js');
  const { formatMarkdown, saveReport } = await import('../lab/bench-report.js');
  mkdirSync(o.out, { recursive: true });
  let teardown: (() => Promise<void>) | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      process.stdout.write('\nstopping: tearing down the current target...\n');
      if (teardown) await teardown();
    }
    process.exit(code);
  };
  process.once('SIGINT', () => void stop(130));
  process.once('SIGTERM', () => void stop(143));
  const { STEADY_LEASES } = await import('../lab/bench.js');
  const only = o.only?.split(',').map((s) => s.trim()).filter(Boolean);
  // The steady-lease step runs in every full or quick run, and with --only when named there.
  const steady = only === undefined || only.includes(STEADY_LEASES);
  const report = await runBench(
    {
      quick: o.quick,
      secondsPerTest: o.seconds,
      repeat: o.repeat,
      flanneld: o.flanneld,
      targets: only?.filter((x) => x !== STEADY_LEASES),
      steadyLeases: steady ? { seconds: o.steadySeconds ?? (o.quick ? 10 : 60), sampleMs: o.quick ? 1000 : 5000 } : undefined,
      log: (l) => process.stdout.write(l + '\n'),
    },
    (t) => (teardown = t),
  );
  process.stdout.write('\n' + formatMarkdown(report));
  const files = saveReport(report, o.out);
  process.stdout.write(`\nsaved ${files.join(', ')}\n`);
  const failed = report.results.some((r) => r.value === null) || report.notes[STEADY_LEASES] !== undefined;
  return failed ? 1 : 0;
}

program
  .command('bench')
  .description('throughput, latency and cost of each backend (raw, kernel vxlan, host-gw, flannelts udp with and without offloads, another flanneld) in the same 2-node netns lab')
  .option('--out <dir>', 'directory for the markdown, JSON and SVG results', 'bench/results')
  .option('--quick', '1 s per measurement (smoke run; the test suite uses it)', false)
  .addOption(new Option('--seconds <n>', 'seconds per throughput test').argParser(positiveInt).default(5))
  .addOption(new Option('--repeat <n>', 'repetitions of the ping RTT and TCP tests (median reported)').argParser(positiveInt).default(1))
  .option('--flanneld <path>', 'also measure this flanneld-compatible binary (e.g. stock flannel) as flanneld-udp, with an etcd store')
  .option('--only <targets>', 'comma-separated subset: raw,vxlan,vxlan-userspace,host-gw,udp,udp-nooffload,flanneld-udp,steady-leases')
  .addOption(new Option('--steady-seconds <n>', 'length of the steady-lease step (1,000 leases, 100 events/s, RSS sampled); default 60, 10 with --quick').argParser(positiveInt))
  .action(async (o: BenchCliOptions) => {
    process.exitCode = await runBenchCli(o);
  });

await program.parseAsync(process.argv);
