// The whole machine around a test: /proc/stat and /proc/net/softnet_stat read before and after, the
// idle baseline read just before, and the wait for a quiet machine. /proc/stat is tick-sampled (a
// jiffy goes to whatever ran when the tick came) and counts every tenant of the machine, ours or not.
import { performance } from 'node:perf_hooks';
import { busySecondsAboveBaseline, machineCpuTimes, USER_HZ, type MachineCpuTimes } from './procstat.js';
import { readSoftnet, softnetDelta, type SoftnetCpu } from './softnet.js';
import { sleep } from '../util/sleep.js';

export interface MachineSnapshot {
  atMs: number;
  cpu: MachineCpuTimes;
  softnet: SoftnetCpu[];
}

export interface MachineWindow {
  seconds: number;
  /** Busy CPU seconds of the whole machine in the window, less the idle baseline's share. */
  busySeconds: number;
  /** Per-CPU softnet counters gained in the window. */
  softnet: SoftnetCpu[];
}

export function snapshot(): MachineSnapshot {
  return { atMs: performance.now(), cpu: machineCpuTimes(), softnet: readSoftnet() };
}

export function windowSince(s: MachineSnapshot, baselineBusyPerSecond: number): MachineWindow {
  const end = snapshot();
  const seconds = (end.atMs - s.atMs) / 1000;
  return { seconds, busySeconds: busySecondsAboveBaseline(s.cpu, end.cpu, seconds, baselineBusyPerSecond), softnet: softnetDelta(s.softnet, end.softnet) };
}

/** Busy CPU seconds per second of the machine over `ms`: what it does with no test running. */
export async function idleBaseline(ms: number): Promise<number> {
  const a = snapshot();
  await sleep(ms);
  const b = snapshot();
  const seconds = (b.atMs - a.atMs) / 1000;
  return seconds > 0 ? (b.cpu.busy - a.cpu.busy) / USER_HZ / seconds : 0;
}

/**
 * Waits (at most maxMs) until the machine is quiet: at least 90 % idle over 250 ms. The previous
 * target's teardown leaves the kernel deleting its namespaces and devices in a worker for a second or
 * two, a daemon that just started is still busy, and an iperf3 run leaves sockets closing; a test
 * started then measures some of that too.
 */
export async function waitQuiet(maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    const a = machineCpuTimes();
    await sleep(250);
    const b = machineCpuTimes();
    if (b.total > a.total && (b.idle - a.idle) / (b.total - a.total) >= 0.9) return;
  }
}
