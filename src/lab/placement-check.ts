// The read-back of a lab's placement: each node daemon's threads (Cpus_allowed_list) and the rps_cpus
// of every rx queue in the node's namespaces and in the underlay, against what the placement says.
import { affinityProblems, readThreadAffinity, type ThreadAffinity } from './affinity.js';
import type { Namespace } from './netns.js';
import { expectedNodeCpus, nodeCpus, type Placement } from './placement.js';
import { readSteering, steeringProblems, type RxQueueSteering } from './rps.js';

/** What a check needs of a node: its namespaces and, when it runs one, its daemon's PID. */
export interface PlacedNode {
  name: string;
  ns: Namespace;
  pod: Namespace;
  pid?: number;
}

export interface PlacementReadback {
  threads: ThreadAffinity[];
  queues: RxQueueSteering[];
  /** One line per difference; empty when the placement is what it should be. */
  problems: string[];
}

/** Node daemons' threads: each on its node's CPU set (per-node) or on every allowed CPU (shared). */
export function checkDaemonThreads(p: Placement, nodes: readonly PlacedNode[]): PlacementReadback {
  const out: PlacementReadback = { threads: [], queues: [], problems: [] };
  nodes.forEach((n, i) => {
    if (n.pid === undefined) return;
    const threads = readThreadAffinity(n.pid);
    if (threads.length === 0) out.problems.push(`${n.name}: daemon pid ${n.pid} has no threads to read (exited?)`);
    out.threads.push(...threads);
    out.problems.push(...affinityProblems(`${n.name} daemon`, threads, expectedNodeCpus(p, i)));
  });
  return out;
}

/**
 * Every rx queue of the nodes' and the underlay's interfaces: steered to the node's CPUs in per-node
 * mode, unsteered otherwise and always in the underlay (the "wire" costs the sender).
 */
export function checkReceiveSteering(p: Placement, nodes: readonly PlacedNode[], underlay: Namespace): PlacementReadback {
  const out: PlacementReadback = { threads: [], queues: [], problems: [] };
  const check = (ns: Namespace, want: readonly number[]): void => {
    const queues = readSteering(ns);
    out.queues.push(...queues);
    out.problems.push(...steeringProblems(queues, want));
  };
  nodes.forEach((n, i) => {
    const want = nodeCpus(p, i) ?? [];
    check(n.ns, want);
    check(n.pod, want);
  });
  check(underlay, []);
  return out;
}
