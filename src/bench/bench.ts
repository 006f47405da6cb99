// `flannelctl bench`: the same 2-node netns lab per backend, measured in one run on one machine so
// the figures compare. Targets are built by targets.ts and measured by measure.ts; report.ts prints.
import { cpus, loadavg, release } from 'node:os';
import { runSteadyLeases } from './steady-leases.js';
import { daemonTarget, kernelTarget, type Target } from './targets.js';
import { measure, median } from './measure.js';
import { BUILTIN_TARGETS, DAEMON_METRICS, METRICS, STEADY_LEASES, type BenchOptions, type BenchReport, type MachineInfo, type Metric } from './types.js';
import { wakeLatency } from '../native/wake-probe.js';

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

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
      else if (name === 'udp' || name === 'udp-nooffload' || name === 'vxlan-userspace' || name.startsWith('flanneld-')) {
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
      report.results.push({ backend: name, metric: m, value: r.length ? round3(median(r)) : null, runs: r.map(round3) });
    }
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

