// Which CPUs a process's threads may run on, read back from /proc/PID/task/*/status (Cpus_allowed_list):
// a placement is verified, not assumed. Threads created after a mask was set inherit it; a mask set on
// a running process afterwards would miss threads it already had, so the lab spawns under the mask.
import { readdirSync, readFileSync } from 'node:fs';
import { formatCpuList, parseCpuList } from './cpuset.js';

export interface ThreadAffinity {
  pid: number;
  tid: number;
  /** The thread's name (Name: in status, at most 15 characters). */
  name: string;
  cpus: number[];
}

/** Name and Cpus_allowed_list of one /proc/.../status text; undefined when either is missing. */
export function parseTaskStatus(text: string): { name: string; cpus: number[] } | undefined {
  const name = /^Name:\s*(.*)$/m.exec(text)?.[1];
  const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(text)?.[1];
  if (name === undefined || list === undefined) return undefined;
  return { name: name.trim(), cpus: parseCpuList(list) };
}

/** Every thread of a process; [] when it has exited (a thread that ends while being read is skipped). */
export function readThreadAffinity(pid: number): ThreadAffinity[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: ThreadAffinity[] = [];
  for (const t of tids) {
    try {
      const s = parseTaskStatus(readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'));
      if (s) out.push({ pid, tid: Number(t), ...s });
    } catch {
      // The thread exited between the listing and the read.
    }
  }
  return out;
}

/** One line per thread whose affinity differs from `want`, naming the process, thread and both sets. */
export function affinityProblems(owner: string, threads: readonly ThreadAffinity[], want: readonly number[]): string[] {
  return threads
    .filter((t) => formatCpuList(t.cpus) !== formatCpuList(want))
    .map((t) => `${owner}: pid ${t.pid} thread ${t.tid} (${t.name}) may run on CPU ${formatCpuList(t.cpus)}, want ${formatCpuList(want)}`);
}
