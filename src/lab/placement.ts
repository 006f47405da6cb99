// Where a lab's nodes run: each node as its own machine (`per-node`: its processes and the receive
// processing of its interfaces on a CPU set of its own) or all of them on the host's CPUs as the
// scheduler likes (`shared`). The plan is pure (N nodes on M CPUs); the Topology applies it (every
// process spawned in a node's namespaces runs under `taskset -c`, every interface's rx queues get the
// node's rps_cpus) and affinity.ts / rps.ts read it back.
import { readFileSync } from 'node:fs';
import { formatCpuList, parseCpuList } from './cpuset.js';

export const PLACEMENT_MODES = ['per-node', 'shared'] as const;
export type PlacementMode = (typeof PLACEMENT_MODES)[number];

export interface Placement {
  /** What was asked for. */
  requested: PlacementMode;
  /** What is in effect: `shared` also when per-node was asked for and could not be had (see fallback). */
  mode: PlacementMode;
  /** The CPUs this process may run on when the plan was made (its Cpus_allowed_list). */
  allowed: number[];
  /** Per-node: node i's CPU set (index from 0), equal in size for every node; empty in shared mode. */
  nodes: number[][];
  /**
   * Per-node: CPUs given to no node. The bench process, etcd / the fake API server and the underlay
   * namespace run there; when empty (as many nodes as CPUs) they run on any CPU.
   */
  spare: number[];
  /** Why per-node was asked for and shared is in effect. */
  fallback?: string;
}

/** Per-node placement asked for explicitly on a machine that cannot give it. */
export class PlacementError extends Error {}

export interface PlanOptions {
  /** Refuse (PlacementError) instead of falling back to shared when per-node is impossible. */
  strict: boolean;
  /** Whether processes can be pinned (taskset is on PATH). */
  canPin: boolean;
}

/**
 * N nodes on the CPUs in `allowed`: per-node gives each node floor(M/N) consecutive CPUs (node 1 the
 * lowest), so every node gets the same; what is left over is the spare set. Fewer CPUs than nodes, or
 * no taskset: an error when strict, else shared with the reason in `fallback`.
 */
export function planPlacement(requested: PlacementMode, nodeCount: number, allowed: readonly number[], o: PlanOptions): Placement {
  const cpus = [...new Set(allowed)].sort((a, b) => a - b);
  const shared = (fallback?: string): Placement => ({ requested, mode: 'shared', allowed: cpus, nodes: [], spare: [], ...(fallback ? { fallback } : {}) });
  if (requested === 'shared') return shared();
  let why: string | undefined;
  if (!o.canPin) why = 'taskset (Debian package util-linux) is not on PATH, so processes cannot be pinned';
  else if (cpus.length < nodeCount) why = `${nodeCount} nodes need at least ${nodeCount} CPUs (one per node); this process may run on ${cpus.length} (CPU ${formatCpuList(cpus)})`;
  if (why) {
    if (o.strict) throw new PlacementError(`--placement per-node: ${why}. Use --placement shared.`);
    return shared(`per-node placement impossible: ${why}; fell back to shared`);
  }
  const each = Math.floor(cpus.length / nodeCount);
  const nodes = Array.from({ length: nodeCount }, (_, i) => cpus.slice(i * each, (i + 1) * each));
  return { requested, mode: 'per-node', allowed: cpus, nodes, spare: cpus.slice(nodeCount * each) };
}

/** The CPUs to pin node i's processes to; undefined: not pinned (shared). */
export function nodeCpus(p: Placement | undefined, index: number): number[] | undefined {
  if (!p || p.mode !== 'per-node') return undefined;
  const set = p.nodes[index];
  if (!set) throw new Error(`the placement was planned for ${p.nodes.length} nodes; node ${index + 1} has no CPU set`);
  return set;
}

/** The CPUs for what belongs to no node (underlay namespace: etcd, API server); undefined: any CPU. */
export function serviceCpus(p: Placement | undefined): number[] | undefined {
  return p?.mode === 'per-node' && p.spare.length > 0 ? p.spare : undefined;
}

/** The affinity node i's threads must show: its own set, or in shared mode everything allowed. */
export function expectedNodeCpus(p: Placement, index: number): number[] {
  return nodeCpus(p, index) ?? p.allowed;
}

/** One line for reports: the mode, each node's CPUs and where the rest runs. */
export function describePlacement(p: Placement): string {
  if (p.mode === 'shared') {
    const why = p.fallback ? ` (${p.fallback})` : '';
    return `shared: every node's processes on any of CPUs ${formatCpuList(p.allowed)} as the scheduler places them, receive processing on the CPU a packet arrives on${why}`;
  }
  const nodes = p.nodes.map((c, i) => `n${i + 1} CPU ${formatCpuList(c)}`).join(', ');
  const rest = p.spare.length
    ? `this process (the bench or flannelctl lab), etcd and the underlay namespace on spare CPU ${formatCpuList(p.spare)}`
    : 'this process (the bench or flannelctl lab), etcd and the underlay namespace on any CPU (no spare CPU; they are idle while traffic runs)';
  return `per-node: ${nodes} (daemon threads, pod processes and rps_cpus of every interface in the node's namespaces); ${rest}; the underlay bridge runs on the sending node's CPU, per-CPU kernel workers with their CPU's work`;
}

/** The CPUs this process may run on (Cpus_allowed_list of /proc/self/status). */
export function allowedCpus(): number[] {
  const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m?.[1]) throw new Error('/proc/self/status has no Cpus_allowed_list');
  return parseCpuList(m[1]);
}
