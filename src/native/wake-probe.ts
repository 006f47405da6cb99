// What a thread waking another costs on this machine (native/host/wake_probe.cc), on one CPU and across
// two: every hand-off of a userspace data plane (pod -> engine -> engine -> pod) is such a wake-up,
// while kernel vxlan runs in the sender's softirq. On a VM whose idle vCPUs halt, the cross-CPU figure
// is tens of microseconds and moves with the host's load; the bench prints it with the machine.
import { addonFunctions } from './addon.js';

export interface WakeRoundTrip {
  medianUs: number;
  p90Us: number;
}

interface WakeExports {
  wakeProbe(cpuA: number, cpuB: number, rounds: number): WakeRoundTrip;
}

/** Round trips (two wake-ups each) between two threads pinned to cpuA and cpuB; blocks for all of them. */
export function wakeProbe(cpuA: number, cpuB: number, rounds: number): WakeRoundTrip {
  return addonFunctions<WakeExports>(['wakeProbe']).wakeProbe(cpuA, cpuB, rounds);
}

export interface WakeLatency {
  /** Median round trip between two threads on CPU 0. */
  sameCpuUs: number | null;
  /** Median round trip between CPU 0 and CPU 1; null on a one-CPU machine. */
  crossCpuUs: number | null;
  /** Why a figure is missing (e.g. the process may not run on CPU 0). */
  error?: string;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

/** Both figures, `rounds` round trips each (2,000: ~0.2 s where a cross-CPU wake-up costs 50 us). */
export function wakeLatency(cores: number, rounds = 2000): WakeLatency {
  try {
    const same = wakeProbe(0, 0, rounds).medianUs;
    const cross = cores >= 2 ? wakeProbe(0, 1, rounds).medianUs : null;
    return { sameCpuUs: round1(same), crossCpuUs: cross === null ? null : round1(cross) };
  } catch (e) {
    return { sameCpuUs: null, crossCpuUs: null, error: (e as Error).message };
  }
}
