// `flannelctl bench`: every backend measured in the same 2-node netns lab, one report (src/bench/).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { teardownOnSignal } from '../../util/signals.js';
import { positiveInt, requireRoot } from './args.js';
import { PLACEMENT_MODES, type PlacementMode } from '../../lab/placement.js';

interface BenchCliOptions {
  out: string;
  quick: boolean;
  seconds: number;
  repeat: number;
  flanneld?: string;
  only?: string;
  steadySeconds?: number;
  placement?: PlacementMode;
  soak?: number;
}

/** `--soak SECONDS`: the chaos soak (docs/reliability.md) instead of the measurements. */
async function runSoakCli(o: BenchCliOptions, seconds: number): Promise<number> {
  const { runSoak } = await import('../../bench/soak/soak.js');
  const { formatSoakMarkdown } = await import('../../bench/soak/report.js');
  mkdirSync(o.out, { recursive: true });
  let teardown: (() => Promise<void>) | undefined;
  teardownOnSignal(async () => teardown?.(), 'stopping: tearing down the soak lab...');
  const report = await runSoak({ seconds, log: (l) => process.stdout.write(l + '\n'), onLab: (t) => (teardown = t) });
  const md = formatSoakMarkdown(report);
  process.stdout.write('\n' + md);
  const stamp = report.started.replace(/[:.]/g, '-');
  const base = join(o.out, `soak-${stamp}`);
  writeFileSync(`${base}.json`, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(`${base}.md`, md);
  process.stdout.write(`\nsaved ${base}.json, ${base}.md\n`);
  return report.passed ? 0 : 1;
}

async function runBenchCli(o: BenchCliOptions): Promise<number> {
  const only = o.only?.split(',').map((s) => s.trim()).filter(Boolean);
  // Before root: what is missing is said first, and nothing is created.
  const { benchMissingPrograms } = await import('../../bench/programs.js');
  const missing = benchMissingPrograms({ only, flanneld: o.flanneld });
  for (const line of missing) process.stderr.write(`flannelctl bench: ${line}\n`);
  if (missing.length) return 1;
  requireRoot('bench');
  if (o.soak !== undefined) return runSoakCli(o, o.soak);
  const { runBench, benchPlacement } = await import('../../bench/bench.js');
  // Asked for explicitly, per-node is refused where impossible; by default it falls back to shared.
  const placement = benchPlacement(o.placement);
  if (typeof placement === 'string') {
    process.stderr.write(`flannelctl bench: ${placement}\n`);
    return 2;
  }
  const { formatMarkdown, saveReport } = await import('../../bench/report.js');
  mkdirSync(o.out, { recursive: true });
  let teardown: (() => Promise<void>) | undefined;
  teardownOnSignal(async () => teardown?.(), 'stopping: tearing down the current target...');
  const { STEADY_LEASES } = await import('../../bench/types.js');
  // The steady-lease step runs in every full or quick run, and with --only when named there.
  const steady = only === undefined || only.includes(STEADY_LEASES);
  const report = await runBench(
    {
      quick: o.quick,
      secondsPerTest: o.seconds,
      repeat: o.repeat,
      flanneld: o.flanneld,
      placement,
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

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('throughput, latency and cost of each backend (raw, kernel vxlan, host-gw, flannelts udp with and without offloads, userspace VXLAN, userspace WireGuard, Debian wireguard-go, another flanneld) in the same 2-node netns lab')
    .option('--out <dir>', 'directory for the markdown, JSON and SVG results', 'bench/results')
    .option('--quick', '1 s per measurement (smoke run; the test suite uses it)', false)
    .addOption(new Option('--seconds <n>', 'seconds per throughput test').argParser(positiveInt).default(5))
    .addOption(new Option('--repeat <n>', 'repetitions of the ping RTT and TCP tests (median reported)').argParser(positiveInt).default(1))
    .addOption(new Option('--placement <mode>', 'per-node: each node (daemon, pod processes, receive processing) on CPUs of its own, as separate machines; shared: all nodes on all CPUs as the scheduler likes (default per-node, shared where the machine has fewer CPUs than nodes)').choices(PLACEMENT_MODES))
    .option('--flanneld <path>', 'also measure this flanneld-compatible binary (e.g. stock flannel) as flanneld-udp, with an etcd store')
    .option('--only <targets>', 'comma-separated subset: raw,vxlan,vxlan-userspace,host-gw,udp,udp-nooffload,wireguard,wireguard-go,flanneld-udp,steady-leases')
    .addOption(new Option('--soak <seconds>', 'instead of measuring: the chaos soak for this long (3 nodes on etcd, lease churn, etcd restarted/frozen/partitioned, daemons killed, pods pinging; see docs/reliability.md)').argParser(positiveInt))
    .addOption(new Option('--steady-seconds <n>', 'length of the steady-lease step (1,000 leases, 100 events/s, RSS sampled); default 60, 10 with --quick').argParser(positiveInt))
    .action(async (o: BenchCliOptions) => {
      process.exitCode = await runBenchCli(o);
    });
}
