// `flannelctl lab exec <node> <cmd...>`: a command inside a kept lab's node as if logged in there —
// its network namespace and the mount namespace of its daemon (so `wg show` finds that node's UAPI
// sockets in its own /run/wireguard), or a pod's network namespace.
import { isAlive } from '../util/process.js';
import type { LabState } from './state.js';

export interface ExecTarget {
  file: string;
  args: string[];
  /** Said before running when the command runs with less than asked (the daemon is gone). */
  note?: string;
}

/**
 * Which lab: the one whose namespace `name` is (ftc86cbd-n1), or the only one kept (for n1, p1).
 */
export function pickLab(states: LabState[], name: string): LabState {
  const named = states.find((x) => name.startsWith(`${x.prefix}-`));
  if (named) return named;
  if (states.length === 0) throw new Error('no kept lab: start one with `flannelctl lab --keep`');
  if (states.length > 1) throw new Error(`${states.length} labs are kept (${states.map((x) => x.prefix).join(', ')}): name the node by its namespace, e.g. ${states[0]!.prefix}-n1`);
  return states[0]!;
}

/** The command line that runs `cmd` in node `name` (n1, n2, ...) or pod (p1, ...) of the lab. */
export function execTarget(lab: LabState, name: string, cmd: string[], alive: (pid: number) => boolean = isAlive): ExecTarget {
  if (cmd.length === 0) throw new Error('lab exec: give a command, e.g. `flannelctl lab exec n1 wg show`');
  const nodes = lab.nodes ?? [];
  const node = nodes.find((n) => n.name === name || n.netns === name);
  if (node) {
    if (node.pid !== undefined && alive(node.pid)) return { file: 'nsenter', args: ['-t', String(node.pid), '-m', '-n', '--', ...cmd] };
    return { file: 'ip', args: ['netns', 'exec', node.netns, ...cmd], note: `the daemon of ${node.name} is not running: its mount namespace (/run/wireguard) is gone, running in the network namespace only` };
  }
  const pod = nodes.find((n) => n.pod === name || n.name.replace(/^n/, 'p') === name);
  if (pod) return { file: 'ip', args: ['netns', 'exec', pod.pod, ...cmd] };
  const known = nodes.flatMap((n) => [n.name, n.name.replace(/^n/, 'p')]).join(', ');
  throw new Error(`lab ${lab.prefix} has no node or pod ${name}${known ? ` (it has ${known})` : ' (its state file predates lab exec)'}`);
}
