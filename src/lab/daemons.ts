// The lab's node processes: one flanneld per node namespace (ours, or another flanneld-compatible
// binary), its flags, log file and status socket, and the waits until the nodes are ready: every
// subnet.env written, every daemon knowing every peer.
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FLANNELD_NODE_FLAGS } from '../config/node-flags.js';
import { BRIDGE_NF_CALL_IPTABLES } from '../firewall/br-netfilter.js';
import { isAlive, killAndWait } from '../util/process.js';
import { sleep } from '../util/sleep.js';
import { missingProgram } from '../util/system-packages.js';
import type { TopologyNode } from './topology.js';

export interface LabNode extends TopologyNode {
  /** The node's directory: subnet.env, flanneld.log, the status socket. */
  dir: string;
  subnetEnv: Record<string, string>;
  pid?: number;
}

/** How the lab runs our flanneld: this node, with the node flags of flanneld's shebang. */
export const ourFlanneld = (): string[] => {
  const here = dirname(fileURLToPath(import.meta.url));
  return [process.execPath, ...FLANNELD_NODE_FLAGS, join(here, '..', 'cli', 'flanneld.js')];
};

/** Parses subnet.env's KEY=VALUE lines (the CNI plugin's reading of it). */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m && m[1]) out[m[1]] = m[2] ?? '';
  }
  return out;
}

export interface DaemonOptions {
  /** Command that runs a flanneld-compatible daemon; default: this package's flanneld. */
  flanneld?: string[];
  /** The store's flags (-subnet-store-dir, -etcd-endpoints, or -kube-subnet-mgr ...). */
  storeArgs: string[];
  /** Extra flags for every daemon. */
  daemonArgs?: string[];
  /** Extra flags for one daemon (node index from 0), e.g. -vxlan-userspace on some nodes. */
  nodeArgs?: (index: number) => string[];
  /** Extra environment for one daemon (node index from 0), e.g. FLANNELTS_FAILPOINTS. */
  nodeEnv?: (index: number) => Record<string, string>;
  /** In kube mode the node name comes from NODE_NAME, as the DaemonSet's downward API sets it. */
  setNodeName: boolean;
  /** Seconds to wait for every subnet.env. */
  startTimeoutSec?: number;
  /**
   * Runs each daemon in a mount namespace where /proc/sys/net/bridge is an empty tmpfs, as on a host
   * without br_netfilter (tests of the lab's opt-out on a machine that has the module loaded).
   */
  hideBrNetfilter?: boolean;
  /**
   * Runs each daemon with a /run of its own (a tmpfs in its mount namespace) holding /run/wireguard, and
   * its WireGuard key in the node's directory: Debian's `wg` has /var/run/wireguard compiled in, so
   * only a mount namespace per node lets `flannelctl lab exec nN wg show` see node N's devices alone.
   */
  privateRun?: boolean;
  log: (line: string) => void;
}

export class NodeDaemons {
  private iptablesNoted = false;
  private brNetfilterNoted = false;

  constructor(
    private readonly nodes: LabNode[],
    private readonly o: DaemonOptions,
  ) {}

  /** Whether the daemons are this package's flanneld (status socket, our extension flags). */
  get ours(): boolean {
    return this.o.flanneld === undefined;
  }

  statusSocket(node: LabNode): string {
    return join(node.dir, 'flannelts.sock');
  }

  start(node: LabNode): void {
    const cmd = this.o.flanneld ?? ourFlanneld();
    const index = this.nodes.indexOf(node);
    const args = [
      ...cmd.slice(1),
      '-iface=eth0',
      ...this.o.storeArgs,
      `-subnet-file=${join(node.dir, 'subnet.env')}`,
      // flanneld's forward rules (on by default) need iptables; the lab needs only iproute2, and its
      // namespaces forward without rules, so without iptables the lab runs with them off.
      ...(this.iptablesMissing() ? ['-iptables-forward-rules=false'] : []),
      // flannelts extensions, which a stock flanneld would reject.
      ...(this.ours ? [`-status-socket=${this.statusSocket(node)}`] : []),
      ...(this.ours && this.brNetfilterMissing() ? ['-br-netfilter-check=false'] : []),
      ...(this.o.daemonArgs ?? []),
      ...(this.o.nodeArgs?.(index) ?? []),
    ];
    const logFd = openSync(join(node.dir, 'flanneld.log'), 'a');
    try {
      const env = {
        ...process.env,
        ...(this.o.setNodeName ? { NODE_NAME: node.name } : {}),
        ...(this.o.privateRun ? { WIREGUARD_KEY_FILE: join(node.dir, 'wgkey') } : {}),
        ...(this.o.nodeEnv?.(index) ?? {}),
      };
      // `ip netns exec` gives each daemon its own mount namespace: what is mounted here is its alone.
      const mounts = [
        ...(this.o.hideBrNetfilter ? ['mount -t tmpfs flannelts-no-br-netfilter /proc/sys/net/bridge'] : []),
        ...(this.o.privateRun ? ['mount -t tmpfs flannelts-run /run', 'mkdir -p /run/wireguard'] : []),
      ];
      const [file, argv] = mounts.length ? ['sh', ['-c', `${mounts.join(' && ')} && exec "$0" "$@"`, cmd[0]!, ...args]] : [cmd[0]!, args];
      const child = node.ns.spawn(file, argv, { stdio: ['ignore', logFd, logFd], detached: true, env });
      // Daemons are tracked by PID; an unref'd child lets `lab --keep` exit while they keep running.
      child.unref();
      node.pid = child.pid;
    } finally {
      closeSync(logFd);
    }
  }

  /** Stops the daemon of one node (SIGTERM, or SIGKILL to simulate a crash), waiting up to 3 s. */
  async stop(node: LabNode, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    if (node.pid === undefined) return;
    await killAndWait(node.pid, { signal, graceMs: 3000, thenKill: false });
    node.pid = undefined;
  }

  private iptablesMissing(): boolean {
    const missing = missingProgram('iptables-restore', 'the daemons run with -iptables-forward-rules=false (the lab forwards without those rules)', 'flanneld\'s -iptables-forward-rules');
    if (missing && !this.iptablesNoted) this.o.log(missing);
    this.iptablesNoted = true;
    return missing !== undefined;
  }

  /**
   * flanneld in iptables mode exits without br_netfilter (flannel >= 0.26). Stock Debian loads the
   * module only when a bridge with netfilter is used; the lab's pods hang off veths, not a bridge, so
   * its daemons run with the documented opt-out instead of the lab loading a module into the host.
   */
  private brNetfilterMissing(): boolean {
    if (!this.o.hideBrNetfilter && existsSync(BRIDGE_NF_CALL_IPTABLES)) return false;
    if (!this.brNetfilterNoted) {
      this.o.log('br_netfilter is not loaded: daemons run with -br-netfilter-check=false (real nodes with pods on a bridge need `modprobe br_netfilter`)');
    }
    this.brNetfilterNoted = true;
    return true;
  }

  log(node: LabNode, lines = 1e9): string {
    try {
      return readFileSync(join(node.dir, 'flanneld.log'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Waits for every node's subnet.env and reads it; a daemon that exits first fails at once with its log. */
  async waitForSubnets(nodes: readonly LabNode[] = this.nodes): Promise<void> {
    const limit = this.o.startTimeoutSec ?? 30;
    const deadline = Date.now() + limit * 1000;
    for (const node of nodes) {
      const file = join(node.dir, 'subnet.env');
      while (!existsSync(file)) {
        if (Date.now() > deadline) throw new Error(`node ${node.name}: no subnet.env after ${limit}s; daemon log:\n${this.log(node, 20)}`);
        if (node.pid !== undefined && !isAlive(node.pid)) throw new Error(`node ${node.name}: flanneld exited before writing subnet.env; daemon log:\n${this.log(node, 20)}`);
        await sleep(50);
      }
      node.subnetEnv = parseEnvFile(readFileSync(file, 'utf8'));
    }
  }

  /**
   * Every daemon knows every other node's lease: subnet.env is written once the lease store's snapshot
   * is applied, but leases taken after that arrive as watch events a moment later. Read from the status
   * socket, so only for our own flanneld.
   */
  async waitForPeers(timeoutMs = 20_000): Promise<void> {
    if (!this.ours) return;
    // Loaded here: the status client pulls in the addon, which a lab of another flanneld does not need.
    const { fetchStatus } = await import('../status.js');
    const deadline = Date.now() + timeoutMs;
    for (const node of this.nodes) {
      if (node.pid === undefined) continue; // a node without a daemon of ours (LabOptions.foreign)
      for (;;) {
        // Known, and in the data plane where the daemon has one (udp, userspace VXLAN: engine routes).
        const known = await fetchStatus(this.statusSocket(node)).then((s) => (s.routes && s.routes.installed < s.routes.expected ? 0 : s.peers.length), () => -1);
        if (known >= this.nodes.length - 1) break;
        if (Date.now() > deadline) throw new Error(`node ${node.name}: knows ${Math.max(known, 0)} of ${this.nodes.length - 1} peers after ${timeoutMs / 1000}s; daemon log:\n${this.log(node, 20)}`);
        await sleep(100);
      }
    }
  }
}
