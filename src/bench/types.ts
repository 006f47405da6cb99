// The bench's vocabulary: the metrics, the built-in targets, its options and the report it produces
// (printed by report.ts, saved as JSON).
import type { SteadyLeasesOptions, SteadyLeasesResult } from './steady-leases.js';
import type { WakeLatency } from '../native/wake-probe.js';
import type { Placement } from '../lab/placement.js';
import type { PlacementCheck } from './placement-verify.js';

export const METRICS = ['tcp1_gbps', 'tcp4_gbps', 'udp_kpps', 'rtt_us_p50', 'rtt_us_p99', 'cpu_s_per_gb', 'machine_cpu_s_per_gb', 'rss_mib', 'rss_mib_1000peers'] as const;
export type Metric = (typeof METRICS)[number];
/** Metrics where less is better (ratios and chart read the other way round). */
export const LOWER_IS_BETTER: ReadonlySet<Metric> = new Set(['rtt_us_p50', 'rtt_us_p99', 'cpu_s_per_gb', 'machine_cpu_s_per_gb', 'rss_mib', 'rss_mib_1000peers']);
/** Metrics that only exist for targets with a daemon (kernel datapaths have no process to measure). */
export const DAEMON_METRICS: ReadonlySet<Metric> = new Set(['cpu_s_per_gb', 'rss_mib', 'rss_mib_1000peers']);

export const BUILTIN_TARGETS = ['raw', 'vxlan', 'vxlan-userspace', 'host-gw', 'udp', 'udp-nooffload', 'wireguard'] as const;
/** The steady-lease memory step's name for `--only` (not a throughput target: no table row). */
export const STEADY_LEASES = 'steady-leases';

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
  /** Thread wake-up round trips at the start and at the end of the run (see native/wake-probe.ts). */
  wakeStart?: WakeLatency;
  wakeEnd?: WakeLatency;
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
  /** The steady-lease step (RSS at ~1,000 leases under churn), when it ran. */
  steadyLeases?: SteadyLeasesResult;
  /** Where the nodes ran (the same for every target), with its one-line description. */
  placement: Placement & { description: string };
  /** Per target: the placement read back during its tests; a failed check fails the row. */
  placementChecks: Record<string, PlacementCheck>;
  /**
   * Per target: busy CPUs (CPU-s per s, /proc/stat) of the machine in the second before each TCP test,
   * the baseline machine_cpu_s_per_gb subtracts. High means other work shared the machine.
   */
  idleBaselines: Record<string, number[]>;
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
  /** Where the nodes run; absent: per-node, falling back to shared (with a note) when impossible. */
  placement?: Placement;
  /** Runs the steady-lease step after the targets; absent: not run. */
  steadyLeases?: SteadyLeasesOptions;
  log?: (line: string) => void;
}
