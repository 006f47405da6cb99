// The bench's proof of placement for one target: every thread of the daemons, iperf3 and the prober read
// back against its node's CPUs, every rx queue's rps_cpus read back (before and after the tests), and
// the received_rps counters of /proc/net/softnet_stat during the TCP tests. Any difference fails the row.
import { affinityProblems, type ThreadAffinity } from '../lab/affinity.js';
import { formatCpuList } from '../lab/cpuset.js';
import { checkDaemonThreads, checkReceiveSteering, type PlacedNode } from '../lab/placement-check.js';
import { expectedNodeCpus, nodeCpus, type Placement, type PlacementMode } from '../lab/placement.js';
import type { Namespace } from '../lab/netns.js';
import { addSoftnet, type SoftnetCpu } from './softnet.js';

export interface ProcessPlacement {
  node: string;
  what: string;
  pid: number;
  threads: number;
  /** The CPU lists its threads showed, e.g. "0" or "0-1". */
  cpus: string;
}

export interface PlacementCheck {
  ok: boolean;
  mode: PlacementMode;
  processes: ProcessPlacement[];
  /** Distinct threads read back. */
  threads: number;
  queues: Array<{ namespace: string; device: string; queue: string; cpus: string }>;
  /** Per CPU, gained during the TCP tests. */
  softnet: Array<SoftnetCpu & { node?: string }>;
  problems: string[];
}

export class PlacementRecorder {
  private readonly processes = new Map<string, ProcessPlacement>();
  private readonly tids = new Set<number>();
  private readonly queues = new Map<string, PlacementCheck['queues'][number]>();
  private readonly problems = new Set<string>();
  private softnetTotal: SoftnetCpu[] = [];

  constructor(
    private readonly p: Placement,
    private readonly nodes: readonly PlacedNode[],
    private readonly underlay: Namespace,
  ) {}

  /** Threads acting for node `index` (its pod's iperf3, or the prober's thread). */
  threads(index: number, what: string, threads: readonly ThreadAffinity[]): void {
    const node = this.nodes[index]?.name ?? `node ${index + 1}`;
    if (threads.length === 0) {
      this.problems.add(`${node} ${what}: no thread could be read back (it exited before the first sample)`);
      return;
    }
    for (const pr of affinityProblems(`${node} ${what}`, threads, expectedNodeCpus(this.p, index))) this.problems.add(pr);
    this.record(node, what, threads);
  }

  private record(node: string, what: string, threads: readonly ThreadAffinity[]): void {
    for (const t of threads) this.tids.add(t.tid);
    const pid = threads[0]!.pid;
    const cpus = [...new Set(threads.map((t) => formatCpuList(t.cpus)))].join(' ');
    const prev = this.processes.get(`${what}@${pid}`);
    this.processes.set(`${what}@${pid}`, { node, what, pid, threads: Math.max(prev?.threads ?? 0, threads.length), cpus });
  }

  /** Every daemon's threads, now. */
  daemons(): void {
    const r = checkDaemonThreads(this.p, this.nodes);
    for (const pr of r.problems) this.problems.add(pr);
    for (const n of this.nodes) {
      const own = r.threads.filter((t) => t.pid === n.pid);
      if (own.length) this.record(n.name, 'daemon', own);
    }
  }

  /** Every rx queue's rps_cpus, now. */
  steering(): void {
    const r = checkReceiveSteering(this.p, this.nodes, this.underlay);
    for (const pr of r.problems) this.problems.add(pr);
    for (const q of r.queues) this.queues.set(`${q.namespace}/${q.device}/${q.queue}`, { namespace: q.namespace, device: q.device, queue: q.queue, cpus: formatCpuList(q.cpus) });
  }

  softnet(delta: readonly SoftnetCpu[]): void {
    this.softnetTotal = addSoftnet(this.softnetTotal, delta);
  }

  /**
   * The result. Per-node also requires RPS IPIs on every node's CPUs during the TCP tests: each node
   * receives from a sender on another CPU, so if its steering works its CPUs took such interrupts.
   */
  finish(): PlacementCheck {
    const owner = (cpu: number): string | undefined => this.nodes.find((_, i) => nodeCpus(this.p, i)?.includes(cpu))?.name;
    if (this.p.mode === 'per-node') {
      this.nodes.forEach((n, i) => {
        const set = nodeCpus(this.p, i) ?? [];
        const ipis = this.softnetTotal.filter((c) => set.includes(c.cpu)).reduce((a, c) => a + c.receivedRps, 0);
        if (ipis === 0) this.problems.add(`${n.name} (CPU ${formatCpuList(set)}): no RPS interrupts received during the TCP tests (softnet_stat received_rps): its receive processing was not steered there`);
      });
    }
    return {
      ok: this.problems.size === 0,
      mode: this.p.mode,
      processes: [...this.processes.values()],
      threads: this.tids.size,
      queues: [...this.queues.values()],
      softnet: this.softnetTotal.map((c) => ({ ...c, ...(owner(c.cpu) ? { node: owner(c.cpu) } : {}) })),
      problems: [...this.problems],
    };
  }
}

/** One line for the report: what was verified, or what was wrong. */
export function formatPlacementCheck(c: PlacementCheck): string {
  if (!c.ok) return `FAILED: ${c.problems.slice(0, 3).join('; ')}${c.problems.length > 3 ? ` (+${c.problems.length - 3} more)` : ''}`;
  const whats = [...new Set(c.processes.map((p) => p.what))].join(', ');
  const steered = c.queues.filter((q) => q.cpus !== '').length;
  const rps = c.softnet.map((s) => `CPU ${s.cpu}${s.node ? ` (${s.node})` : ''} ${s.receivedRps}`).join(', ');
  return `verified: ${c.threads} threads (${whats}) ${c.mode === 'per-node' ? "on their node's CPUs" : 'unpinned'}; rps_cpus of ${c.queues.length} rx queues read back (${steered} steered); RPS interrupts during the TCP tests: ${rps}`;
}
