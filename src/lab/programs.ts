// The optional programs a lab's options call for (a real etcd for --store etcd, iptables for -ip-masq),
// checked before anything is created: a missing one is one line naming its Debian package and what to
// do instead, never a daemon that dies half-way through the lab. The lab itself needs only iproute2
// (README's requirement, said the same way).
import { missingLines, missingProgram } from '../util/system-packages.js';

export interface LabProgramOptions {
  store?: 'file' | 'etcd' | 'kube';
  daemonArgs?: string[];
}

/** One line per missing program, e.g. "--store etcd needs etcd (apt-get install etcd-server); nothing was started: ...". */
export function labMissingPrograms(o: LabProgramOptions): string[] {
  return missingLines([
    missingProgram('ip', 'nothing was started: the lab builds its namespaces, links and addresses with it'),
    o.store === 'etcd' ? missingProgram('etcd', 'nothing was started: install it, or use --store file (the default) or --store kube, which need no package', '--store etcd') : undefined,
    // flanneld writes its masquerade rules with iptables-restore.
    o.daemonArgs?.some((a) => /^--?ip-masq(=true)?$/.test(a)) ? missingProgram('iptables-restore', 'nothing was started: install it, or leave out -ip-masq', '-ip-masq') : undefined,
  ]);
}
