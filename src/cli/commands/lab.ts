// `flannelctl lab`: build a multi-node overlay in network namespaces, check every pod pair, report;
// `flannelctl lab down` removes labs kept with --keep.
import { Option, type Command } from 'commander';
import { Lab, type LabOptions } from '../../lab/lab.js';
import { labMissingPrograms } from '../../lab/programs.js';
import { formatLabReport } from '../../lab/report.js';
import { keptLabs, labDown } from '../../lab/state.js';
import { execTarget, pickLab } from '../../lab/exec.js';
import { spawnSync } from 'node:child_process';
import { teardownOnSignal } from '../../util/signals.js';
import { nonNegativeInt, positiveInt, requireRoot } from './args.js';
import { allowedCpus, describePlacement, planPlacement, PLACEMENT_MODES, type Placement, type PlacementMode } from '../../lab/placement.js';
import { hasBinary } from '../../util/system-packages.js';

interface LabCliOptions {
  nodes: number;
  backend: string;
  ipv6: boolean;
  keep: boolean;
  timeout: number;
  flanneld?: string;
  store: 'file' | 'etcd' | 'kube';
  directRouting: boolean;
  routed: boolean;
  ipMasq: boolean;
  userspaceNodes: number;
  placement: PlacementMode;
  wireguardMode?: string;
}

async function runLab(o: LabCliOptions): Promise<number> {
  const opts: LabOptions = {
    nodes: o.nodes,
    backend: o.backend,
    ipv6: o.ipv6,
    store: o.store,
    routed: o.routed,
    backendOptions: o.directRouting || o.wireguardMode ? { ...(o.directRouting ? { DirectRouting: true } : {}), ...(o.wireguardMode ? { Mode: o.wireguardMode } : {}) } : undefined,
    daemonArgs: o.ipMasq ? ['-ip-masq'] : undefined,
    // The last N nodes run the userspace VXLAN VTEP, the others kernel vxlan devices.
    nodeArgs: o.userspaceNodes ? (i) => (i >= o.nodes - o.userspaceNodes ? ['-vxlan-userspace'] : []) : undefined,
    startTimeoutSec: o.timeout,
    flanneld: o.flanneld ? [o.flanneld] : undefined,
    log: (l) => process.stdout.write(l + '\n'),
  };
  // Before root: what is missing is said first, and nothing is created.
  const missing = labMissingPrograms(opts);
  for (const line of missing) process.stderr.write(`flannelctl lab: ${line}\n`);
  if (missing.length) return 1;
  requireRoot('lab');
  let lab: Lab;
  let placement: Placement;
  try {
    placement = planPlacement(o.placement, o.nodes, allowedCpus(), { strict: true, canPin: hasBinary('taskset') });
    lab = new Lab({ ...opts, placement });
  } catch (e) {
    process.stderr.write(`flannelctl lab: ${(e as Error).message}\n`);
    return 2;
  }
  const onSignal = teardownOnSignal(() => lab.down(), 'tearing down the lab...');
  try {
    process.stdout.write(`flannelctl lab: ${o.nodes} nodes, backend ${o.backend}${o.ipv6 ? ', IPv4+IPv6' : ''}${o.routed ? ', routed underlay' : ''}${o.directRouting ? ', DirectRouting' : ''}${o.wireguardMode ? `, Mode ${o.wireguardMode}` : ''}${o.ipMasq ? ', -ip-masq' : ''}${o.userspaceNodes ? `, ${o.userspaceNodes} userspace VTEP node(s)` : ''}, ${o.store} lease store, prefix ${lab.set.prefix}\n`);
    await lab.up();
    const results = await lab.checkAllPairs();
    process.stdout.write('\n' + formatLabReport(lab, results) + '\n');
    const placed = lab.checkPlacement();
    process.stdout.write(`placement: ${describePlacement(placement)}\nread back: ${placed.threads.length} daemon threads, ${placed.queues.length} rx queues: ${placed.problems.length ? placed.problems.join('; ') : 'as placed'}\n`);
    const failed = results.some((r) => !r.ok) || placed.problems.length > 0;
    if (failed) {
      for (const n of lab.nodes) process.stdout.write(`\n--- ${n.name} flanneld log (last lines) ---\n${lab.daemonLog(n, 15)}\n`);
    }
    if (o.keep) {
      const state = lab.saveState();
      process.stdout.write(`\nlab kept running (state in ${state}).\n`);
      for (const n of lab.nodes) process.stdout.write(`  sudo ip netns exec ${n.pod.name} ping ${lab.nodes.find((m) => m !== n)?.podIP ?? n.podIP}\n`);
      if (o.backend === 'wireguard') process.stdout.write(`  sudo npx flannelctl lab exec n1 wg show\n`);
      process.stdout.write('remove it with: sudo npx flannelctl lab down\n');
      return failed ? 1 : 0;
    }
    await lab.down();
    return failed ? 1 : 0;
  } catch (e) {
    process.stderr.write(`flannelctl lab: ${(e as Error).message}\n`);
    if (!onSignal.started()) await lab.down();
    return 1;
  }
}

export function registerLabCommand(program: Command): void {
  const lab = program
    .command('lab')
    .description('build a multi-node overlay in network namespaces on this host and check pod-to-pod connectivity')
    .addOption(new Option('-n, --nodes <n>', 'number of nodes').argParser(positiveInt).default(3))
    .addOption(new Option('-b, --backend <type>', 'flannel backend').choices(['udp', 'vxlan', 'host-gw', 'wireguard']).default('udp'))
    .option('--ipv6', 'dual-stack: also IPv6 underlay and overlay (2001:db8::/32)', false)
    .option('--keep', 'leave the lab running; remove it later with `flannelctl lab down`', false)
    .addOption(new Option('--timeout <seconds>', 'seconds to wait for every node to get its lease').argParser(positiveInt).default(30))
    .option('--flanneld <path>', 'run this flanneld-compatible binary instead of ours')
    .addOption(new Option('--store <store>', 'lease store: embedded file store, a real etcd inside the lab, or kube (-kube-subnet-mgr against a fake API server inside the lab)').choices(['file', 'etcd', 'kube']).default('file'))
    .option('--direct-routing', 'vxlan: pass "DirectRouting": true (direct routes to peers on the same segment)', false)
    .option('--routed', 'two underlay segments joined by a router namespace (nodes split between them)', false)
    .option('--ip-masq', 'run every flanneld with -ip-masq', false)
    .addOption(new Option('--userspace-nodes <n>', 'vxlan: the last N nodes run the userspace VXLAN VTEP (-vxlan-userspace), the others kernel vxlan').argParser(nonNegativeInt).default(0))
    .addOption(new Option('--wireguard-mode <mode>', 'wireguard: Backend.Mode of net-conf.json (flannel default separate)').choices(['separate', 'auto', 'ipv4', 'ipv6']))
    .addOption(new Option('--placement <mode>', 'per-node: each node (daemon, pod processes, receive processing) on CPUs of its own; shared: as the scheduler likes').choices(PLACEMENT_MODES).default('shared'))
    .enablePositionalOptions()
    .action(async (o: LabCliOptions) => {
      if (o.userspaceNodes > 0 && o.backend !== 'vxlan') {
        process.stderr.write('flannelctl lab: --userspace-nodes needs --backend vxlan\n');
        process.exitCode = 2;
        return;
      }
      if (o.wireguardMode && o.backend !== 'wireguard') {
        process.stderr.write('flannelctl lab: --wireguard-mode needs --backend wireguard\n');
        process.exitCode = 2;
        return;
      }
      if (o.userspaceNodes > o.nodes) {
        process.stderr.write(`flannelctl lab: --userspace-nodes ${o.userspaceNodes} is more than --nodes ${o.nodes}\n`);
        process.exitCode = 2;
        return;
      }
      process.exitCode = await runLab(o);
    });

  lab
    .command('exec')
    .description('run a command in a kept lab\'s node (its network namespace and its daemon\'s mount namespace, e.g. `wg show`) or pod (p1, p2, ...)')
    .argument('<node>', 'n1, n2, ... or p1, p2, ... (or the namespace, e.g. ftc86cbd-n1, when several labs are kept)')
    .argument('<cmd...>', 'the command and its arguments')
    .helpOption(false)
    .passThroughOptions()
    .action((node: string, command: string[]) => {
      requireRoot('lab exec');
      try {
        const t = execTarget(pickLab(keptLabs(), node), node, command);
        if (t.note) process.stderr.write(`flannelctl lab exec: ${t.note}\n`);
        const r = spawnSync(t.file, t.args, { stdio: 'inherit' });
        if (r.error) throw new Error(`${t.file}: ${r.error.message}`);
        process.exitCode = r.status ?? 1;
      } catch (e) {
        process.stderr.write(`flannelctl lab exec: ${(e as Error).message}\n`);
        process.exitCode = 2;
      }
    });

  lab
    .command('down')
    .description('remove labs left running with --keep')
    .argument('[prefix]', 'only the lab with this prefix')
    .action(async (prefix?: string) => {
      requireRoot('lab down');
      const removed = await labDown(prefix);
      process.stdout.write(removed.length ? `removed ${removed.join(', ')}\n` : 'no kept lab found\n');
    });
}
