// The soak's faults, each injected and undone for real: etcd stopped and started, etcd frozen with
// SIGSTOP, one node cut from etcd by nftables in its namespace (packets dropped both ways, no reset),
// one node's flanneld SIGKILLed and restarted. Durations are drawn at random within each kind's range.
import type { Lab, LabNode } from '../../lab/lab.js';
import { LAB_SERVICE_IP } from '../../lab/topology.js';
import { fetchStatus } from '../../status.js';
import { sleep } from '../../util/sleep.js';
import type { FaultKind } from './ledger.js';

/** A random duration in [min, max] ms. */
export type Draw = (minMs: number, maxMs: number) => number;
export const uniformDraw: Draw = (min, max) => min + Math.random() * (max - min);

export interface FaultContext {
  lab: Lab;
  draw: Draw;
  /** The churn must not write while etcd cannot answer (its requests would block the soak). */
  setEtcdAvailable(up: boolean): void;
  /** Called right before a node's daemon is killed, with its last status (its counters die with it). */
  beforeKill(node: LabNode): Promise<void>;
  log(line: string): void;
}

export interface InjectedFault {
  kind: FaultKind;
  node?: string;
  start: number;
  end: number;
  detail: string;
}

const NFT_TABLE = 'flannelts_soak_partition';

/** nftables rules in the node's namespace that drop its etcd traffic both ways, silently. */
function partitionRules(): string {
  return [
    `table inet ${NFT_TABLE} {`,
    `  chain out { type filter hook output priority 0; ip daddr ${LAB_SERVICE_IP} tcp dport 2379 drop; }`,
    `  chain in { type filter hook input priority 0; ip saddr ${LAB_SERVICE_IP} tcp sport 2379 drop; }`,
    '}',
    '',
  ].join('\n');
}

/** Until the node's (restarted) daemon answers on its status socket and knows every other real node. */
async function waitKnowsPeers(lab: Lab, node: LabNode, timeoutMs: number): Promise<void> {
  const others = lab.nodes.filter((n) => n !== node).map((n) => n.subnetEnv.FLANNEL_SUBNET ?? '');
  const want = others.map((s) => s.replace(/\.1\/(\d+)$/, '.0/$1'));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const s = await fetchStatus(lab.statusSocket(node), 1000).catch(() => undefined);
    const peers = new Set(s?.peers.map((p) => p.subnet ?? '') ?? []);
    if (s && want.every((w) => peers.has(w)) && s.routes?.installed === s.routes?.expected) return;
    await sleep(50);
  }
  throw new Error(`node ${node.name}: restarted daemon did not know its peers within ${timeoutMs / 1000}s:\n${lab.daemonLog(node, 20)}`);
}

export async function injectFault(kind: FaultKind, c: FaultContext): Promise<InjectedFault> {
  const { lab, draw } = c;
  const pick = (): LabNode => lab.nodes[Math.floor(Math.random() * lab.nodes.length)]!;
  const start = Date.now();
  switch (kind) {
    case 'etcd-restart': {
      const down = draw(1000, 5000);
      c.setEtcdAvailable(false);
      try {
        await lab.stopEtcd();
        await sleep(down);
        await lab.restartEtcd();
      } finally {
        c.setEtcdAvailable(true);
      }
      return { kind, start, end: Date.now(), detail: `etcd down ${(down / 1000).toFixed(1)} s` };
    }
    case 'etcd-sigstop': {
      const frozen = draw(5000, 30_000);
      c.setEtcdAvailable(false);
      lab.signalEtcd('SIGSTOP');
      try {
        await sleep(frozen);
      } finally {
        lab.signalEtcd('SIGCONT');
        c.setEtcdAvailable(true);
      }
      return { kind, start, end: Date.now(), detail: `etcd frozen ${(frozen / 1000).toFixed(1)} s` };
    }
    case 'partition': {
      const node = pick();
      const cut = draw(5000, 30_000);
      node.ns.exec('nft', ['-f', '-'], { input: partitionRules() });
      try {
        await sleep(cut);
      } finally {
        node.ns.exec('nft', ['delete', 'table', 'inet', NFT_TABLE]);
      }
      return { kind, node: node.name, start, end: Date.now(), detail: `${node.name} cut from etcd ${(cut / 1000).toFixed(1)} s` };
    }
    case 'daemon-kill': {
      const node = pick();
      const away = draw(1000, 3000);
      await c.beforeKill(node);
      const killedAt = Date.now();
      await lab.stopDaemon(node, 'SIGKILL');
      await sleep(away);
      lab.startDaemon(node);
      await waitKnowsPeers(lab, node, 60_000);
      const back = Date.now() - killedAt - away;
      return { kind, node: node.name, start: killedAt, end: Date.now(), detail: `${node.name} killed, restarted after ${(away / 1000).toFixed(1)} s, back ${Math.round(back)} ms later` };
    }
  }
}

/** Whether the machine has what the soak's faults and probes need (names the package when not). */
export function soakPrerequisites(has: (bin: string) => boolean): string[] {
  const need: Array<[string, string]> = [
    ['etcd', 'etcd-server'],
    ['nft', 'nftables'],
  ];
  return need.filter(([bin]) => !has(bin)).map(([bin, pkg]) => `${bin} (apt-get install ${pkg})`);
}
