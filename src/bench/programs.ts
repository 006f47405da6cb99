// The optional programs a bench run calls for (iperf3 for every measured target, a real etcd for
// another flanneld's lease store), checked before any lab is created: a missing one is one line naming
// its Debian package and what to do instead, never a target that fails after its lab was built.
import { missingLines, missingProgram } from '../util/system-packages.js';
import { STEADY_LEASES } from './types.js';

export interface BenchProgramOptions {
  /** --only's list; undefined: every built-in target (and flanneld-udp with --flanneld). */
  only?: string[];
  flanneld?: string;
}

/** One line per missing program, e.g. "needs iperf3 (apt-get install iperf3); nothing was started: ...". */
export function benchMissingPrograms(o: BenchProgramOptions): string[] {
  const measured = o.only === undefined || o.only.some((t) => t !== STEADY_LEASES);
  const stock = o.flanneld !== undefined && (o.only === undefined || o.only.some((t) => t.startsWith('flanneld-')));
  return missingLines([
    missingProgram('ip', 'nothing was started: every target is built in namespaces with it'),
    measured ? missingProgram('iperf3', `nothing was started: iperf3 measures the TCP and UDP throughput; install it, or run --only ${STEADY_LEASES}, which needs no package`) : undefined,
    stock ? missingProgram('etcd', 'nothing was started: the other flanneld keeps its leases in a real etcd; install it, or leave out --flanneld', '--flanneld') : undefined,
  ]);
}
