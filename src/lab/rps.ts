// Receive packet steering of a namespace's interfaces: rx-*/rps_cpus says which CPUs process what an
// interface receives (0: the CPU the packet arrived on, i.e. whoever sent it into a veth or wrote it
// into a TUN). A namespace's devices are visible in /sys only from inside it (`ip netns exec` remounts
// /sys), so both the writes and the read-back run there.
import type { Namespace } from './netns.js';
import { formatCpuList, formatCpuMask, parseCpuMask } from './cpuset.js';

export interface RxQueueSteering {
  namespace: string;
  device: string;
  queue: string;
  /** CPUs in its rps_cpus; [] = no steering. */
  cpus: number[];
}

const GLOB = '/sys/class/net/*/queues/rx-*/rps_cpus';

/** Sets every rx queue of every interface in the namespace (devices that exist now) to `cpus`. */
export function steerReceive(ns: Namespace, cpus: readonly number[]): void {
  ns.exec('sh', ['-c', `for f in ${GLOB}; do [ -e "$f" ] && echo ${formatCpuMask(cpus)} > "$f"; done; true`]);
}

/**
 * Parses `grep -H . .../rps_cpus` output: "/sys/class/net/eth0/queues/rx-0/rps_cpus:00000000,00000001"
 * per line. Lines that are not such (a grep warning) are skipped.
 */
export function parseRpsReadback(namespace: string, text: string): RxQueueSteering[] {
  const out: RxQueueSteering[] = [];
  for (const line of text.split('\n')) {
    const m = /^\/sys\/class\/net\/([^/]+)\/queues\/(rx-\d+)\/rps_cpus:([0-9a-fA-F,]+)$/.exec(line.trim());
    if (m) out.push({ namespace, device: m[1]!, queue: m[2]!, cpus: parseCpuMask(m[3]!) });
  }
  return out;
}

/** Every rx queue's rps_cpus in the namespace, read back from inside it. */
export function readSteering(ns: Namespace): RxQueueSteering[] {
  return parseRpsReadback(ns.name, ns.exec('sh', ['-c', `grep -H . ${GLOB} 2>/dev/null; true`]));
}

/** Problems (one line each) where a queue's steering differs from `want` ([] = none expected). */
export function steeringProblems(queues: readonly RxQueueSteering[], want: readonly number[]): string[] {
  return queues
    .filter((q) => formatCpuList(q.cpus) !== formatCpuList(want))
    .map((q) => `${q.namespace} ${q.device} ${q.queue} rps_cpus is ${q.cpus.length ? 'CPU ' + formatCpuList(q.cpus) : 'none'}, want ${want.length ? 'CPU ' + formatCpuList(want) : 'none'}`);
}
