// `flannelctl bench`: the same 2-node netns lab per backend, measured in one run on one machine so
// the figures compare. Targets are built by targets.ts and measured by measure.ts; report.ts prints.
// Every target runs under one placement (src/lab/placement.ts): per-node by default.
import { cpus, loadavg, release } from 'node:os';
import { runSteadyLeases } from './steady-leases.js';
import { daemonTarget, kernelTarget, wireguardGoTarget, type Target } from './targets.js';
import { measure, median } from './measure.js';
import { formatPlacementCheck } from './placement-verify.js';
import { BUILTIN_TARGETS, DAEMON_METRICS, METRICS, STEADY_LEASES, type BenchOptions, type BenchReport, type MachineInfo, type Metric } from './types.js';
import { wakeLatency } from '../native/wake-probe.js';
import { allowedCpus, describePlacement, planPlacement, PlacementError, type Placement, type PlacementMode } from '../lab/placement.js';
import { formatCpuList } from '../lab/cpuset.js';
import { run } from '../lab/netns.js';
import { hasBinary, installHint } from '../util/system-packages.js';

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Every target is a 2-node lab. */
export const BENCH_NODES = 2;

type OnTarget = (teardown: (() => Promise<void>) | undefined) => void;

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    kernel: release(),
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    node: process.version,
    loadavgStart: loadavg().map((x) => Math.round(x * 100) / 100),
    wakeStart: wakeLatency(c.length),
  };
}

/**
 * The run's placement. Not given: per-node, or shared with the reason when this machine cannot give
 * every node a CPU. Given: exactly that, or the one-line reason it is impossible (a string).
 */
export function benchPlacement(mode?: PlacementMode): Placement | string {
  try {
    return planPlacement(mode ?? 'per-node', BENCH_NODES, allowedCpus(), { strict: mode !== undefined, canPin: hasBinary('taskset') });
  } catch (e) {
    if (e instanceof PlacementError) return e.message;
    throw e;
  }
}

function defaultPlacement(): Placement {
  const p = benchPlacement();
  if (typeof p === 'string') throw new Error(p); // not strict: never a refusal
  return p;
}

/**
 * Per-node with spare CPUs: the bench process itself (every thread) moves there for the run, out of
 * the nodes' way; returns how to move it back. Without spare CPUs it stays where it is: while a test
 * runs it only waits for a child to exit.
 */
function pinBench(p: Placement): () => void {
  if (p.mode !== 'per-node' || p.spare.length === 0) return () => {};
  const move = (set: readonly number[]): void => void run('taskset', ['-a', '-p', '-c', formatCpuList(set), String(process.pid)]);
  move(p.spare);
  return () => move(p.allowed);
}

/**
 * Every built-in target, the wireguard-go row where Debian's wireguard-go and wg are installed (a
 * fresh machine has neither: the row is left out with a line saying so), flanneld-udp with --flanneld.
 */
export function defaultTargets(o: Pick<BenchOptions, 'flanneld'>, log: (line: string) => void = () => {}): string[] {
  const wgGo = hasBinary('wireguard-go') && hasBinary('wg');
  if (!wgGo) log(`wireguard-go: not measured (${installHint(hasBinary('wg') ? 'wireguard-go' : 'wg')})`);
  return [...BUILTIN_TARGETS, ...(wgGo ? ['wireguard-go'] : []), ...(o.flanneld ? ['flanneld-udp'] : [])];
}

/** Runs every target in turn; a target that fails gets null values and a note, the others still run. */
export async function runBench(o: BenchOptions, onTarget?: OnTarget): Promise<BenchReport> {
  const log = o.log ?? (() => {});
  const targets = o.targets ?? defaultTargets(o, log);
  const placement = o.placement ?? defaultPlacement();
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
    placement: { ...placement, description: describePlacement(placement) },
    placementChecks: {},
    idleBaselines: {},
  };
  log(`placement: ${report.placement.description}`);
  const unpin = pinBench(placement);
  try {
    for (const name of targets) await runTarget(name, o, placement, report, onTarget);
  } finally {
    unpin();
  }
  if (o.steadyLeases) {
    try {
      report.steadyLeases = await runSteadyLeases({ ...o.steadyLeases, log, onLab: onTarget });
      if (!report.steadyLeases.converged) report.notes[STEADY_LEASES] = `FAILED: the daemons did not match the store: ${report.steadyLeases.detail.join('; ')}`;
    } catch (e) {
      report.notes[STEADY_LEASES] = `FAILED: ${(e as Error).message.split('\n')[0] ?? 'failed'}`;
      log(`${STEADY_LEASES}: ${report.notes[STEADY_LEASES]}`);
    }
  }
  report.machine.loadavgEnd = loadavg().map((x) => Math.round(x * 100) / 100);
  report.machine.wakeEnd = wakeLatency(report.machine.cores);
  return report;
}

/** One target: built, measured, its placement checked, torn down; its results appended to the report. */
async function runTarget(name: string, o: BenchOptions, placement: Placement, report: BenchReport, onTarget?: OnTarget): Promise<void> {
  const log = o.log ?? (() => {});
  log(`${name}: setting up`);
  const runs = new Map<Metric, number[]>();
  let target: Target | undefined;
  try {
    if (name === 'raw' || name === 'vxlan' || name === 'host-gw') target = kernelTarget(name, placement);
    else if (name === 'wireguard-go') target = await wireguardGoTarget(placement);
    else if (name === 'udp' || name === 'udp-nooffload' || name === 'vxlan-userspace' || name === 'wireguard' || name.startsWith('flanneld-')) {
      if (name.startsWith('flanneld-') && !o.flanneld) throw new Error('needs --flanneld PATH');
      target = await daemonTarget(name, o, placement);
    } else throw new Error(`unknown target ${name}`);
    onTarget?.(target.teardown);
    report.prefixes.push(target.prefix);
    report.notes[name] = target.note;
    const measured = await measure(name, target, o, placement, (m, r) => runs.set(m, r));
    const check = measured.placement;
    report.placementChecks[name] = check;
    report.idleBaselines[name] = measured.idleBaselines;
    log(`  ${name}: placement ${formatPlacementCheck(check)}`);
    if (!check.ok) throw new Error(`placement: ${check.problems[0]}${check.problems.length > 1 ? ` (+${check.problems.length - 1} more)` : ''}`);
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0] ?? 'failed';
    report.notes[name] = `${report.notes[name] ? report.notes[name] + '; ' : ''}FAILED: ${msg}`;
    log(`${name}: FAILED: ${msg}`);
  } finally {
    if (target) await target.teardown();
    onTarget?.(undefined);
  }
  // Figures measured under another placement than the report names stay in `runs`, never in `value`.
  const placedWrong = report.placementChecks[name]?.ok === false;
  for (const m of METRICS) {
    if (DAEMON_METRICS.has(m) && !runs.has(m)) continue; // kernel datapaths: no daemon to measure
    const r = runs.get(m) ?? [];
    report.results.push({ backend: name, metric: m, value: r.length && !placedWrong ? round3(median(r)) : null, runs: r.map(round3) });
  }
}
