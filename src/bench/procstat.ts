// CPU time and resident memory from /proc: a process's (the daemons' cost figures) and the whole
// machine's (the quiet wait and the whole-machine efficiency column).
import { readFileSync } from 'node:fs';

/** USER_HZ: /proc/stat and /proc/PID/stat count in 1/100 s on every Linux ABI Node supports. */
export const USER_HZ = 100;

/** utime+stime of a process in seconds (all threads). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the ")" of the command name: state is field 3, utime 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return ticks / USER_HZ;
}

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The whole machine's CPU time in jiffies, from the "cpu" line of /proc/stat. */
export interface MachineCpuTimes {
  /** user + nice + system + irq + softirq: work done (guest time is already inside user and nice). */
  busy: number;
  /** idle + iowait. */
  idle: number;
  /** Time the hypervisor gave to someone else: neither ours nor idle. */
  steal: number;
  total: number;
}

/** Parses "cpu  user nice system idle iowait irq softirq steal guest guest_nice". */
export function parseCpuLine(line: string): MachineCpuTimes {
  const f = line.trim().split(/\s+/);
  if (f[0] !== 'cpu' || f.length < 8) throw new Error(`/proc/stat: expected the "cpu" line, got "${line.slice(0, 40)}"`);
  const n = f.slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = n;
  // guest and guest_nice (fields 9 and 10) are counted in user and nice already: left out of total.
  return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

export function machineCpuTimes(): MachineCpuTimes {
  return parseCpuLine(readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!);
}

/**
 * CPU seconds a window cost the machine beyond its idle baseline: the busy jiffies between two
 * readings, less what the machine did per second just before (other tenants, housekeeping) times the
 * window's length; never below zero.
 */
export function busySecondsAboveBaseline(before: MachineCpuTimes, after: MachineCpuTimes, seconds: number, baselineBusyPerSecond: number): number {
  return Math.max(0, (after.busy - before.busy) / USER_HZ - baselineBusyPerSecond * seconds);
}
