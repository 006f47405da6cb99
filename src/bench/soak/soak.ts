// `flannelctl bench --soak SECONDS`: the chaos soak defined in docs/reliability.md. Three udp nodes on a
// real etcd, pods pinging each other, leases churning, and one fault at a time at random moments (etcd
// restarted or frozen, one node partitioned from etcd, one daemon SIGKILLed); after each fault a settle
// time, then a checkpoint: every node's view must equal etcd. The ledger attributes every echo.
import { loadavg } from 'node:os';
import { Lab, type LabNode } from '../../lab/lab.js';
import { LAB_ETCD_PREFIX } from '../../lab/lab-etcd.js';
import { hasBinary } from '../../util/system-packages.js';
import { fetchStatus } from '../../status.js';
import { comparePeers } from '../peer-compare.js';
import { isAlive } from '../../util/process.js';
import { sleep } from '../../util/sleep.js';
import { LeaseChurn } from './churn.js';
import { injectFault, soakPrerequisites, uniformDraw, type Draw, type InjectedFault } from './faults.js';
import { FAULT_KINDS, tallyEchoes, type Echo, type FaultKind, type FaultWindow, type Ledger } from './ledger.js';
import { startEchoProber, type EchoProber } from './prober.js';

export interface SoakOptions {
  /** Length of the chaos (setup and teardown not included). */
  seconds: number;
  /** The daemons' -watch-liveness-seconds (default 15); the settle time is it + 2 s. */
  livenessSeconds?: number;
  /** The daemons' -etcd-relist-seconds (default 60 in the soak). */
  relistSeconds?: number;
  echoIntervalMs?: number;
  prefix?: string;
  /** Fault kinds to draw from (default: all). */
  kinds?: readonly FaultKind[];
  draw?: Draw;
  log?: (line: string) => void;
  onLab?: (teardown: (() => Promise<void>) | undefined) => void;
}

export interface SoakFault extends InjectedFault {
  /** The checkpoint at the end of its settle time: every node's view equals etcd. */
  checkpoint: { ok: boolean; detail: string };
}

export interface SoakReport {
  tool: 'flannelctl bench --soak';
  started: string;
  seconds: number;
  livenessSeconds: number;
  settleMs: number;
  echoIntervalMs: number;
  loadavg: { start: number[]; end: number[] };
  faults: SoakFault[];
  ledger: Ledger;
  final: { ok: boolean; detail: string[]; convergeMs: number };
  /** Watch replacements by reason, summed over every daemon that ran (killed ones included). */
  replacements: Record<string, number>;
  churn: { writes: number; failures: number };
  daemonsAlive: boolean;
  passed: boolean;
  prefix: string;
}

/** etcd's leases (subnet CIDR -> public IP), as the daemons should see them. */
function storeLeases(lab: Lab): Map<string, string> {
  const out = new Map<string, string>();
  for (const kv of lab.etcdList(`${LAB_ETCD_PREFIX}/subnets/`)) {
    const m = /\/subnets\/(\d+\.\d+\.\d+\.\d+)-(\d+)$/.exec(kv.key);
    if (!m) continue;
    let ip = '';
    try {
      ip = String((JSON.parse(kv.value) as { PublicIP?: unknown }).PublicIP ?? '');
    } catch {
      // not a lease: no peer either
      continue;
    }
    out.set(`${m[1]}/${m[2]}`, ip);
  }
  return out;
}

const ownSubnet = (n: LabNode): string => (n.subnetEnv.FLANNEL_SUBNET ?? '').replace(/\.1\/(\d+)$/, '.0/$1');

/** One node against the store: peers, their public IPs, and the data plane's routes. */
async function compareNode(lab: Lab, n: LabNode, store: Map<string, string>): Promise<{ ok: boolean; detail: string }> {
  const want = new Map(store);
  want.delete(ownSubnet(n));
  const s = await fetchStatus(lab.statusSocket(n), 2000).catch((e: Error) => e);
  if (s instanceof Error) return { ok: false, detail: `${n.name}: no status (${s.message})` };
  const { ok, missing, extra, wrongIP, peers } = comparePeers(s, want);
  return {
    ok,
    detail: ok
      ? `${n.name}: ${peers} peers = store`
      : `${n.name}: missing [${missing.join(' ')}] extra [${extra.join(' ')}] wrong IP [${wrongIP.join(' ')}] routes ${JSON.stringify(s.routes)} (watch ${JSON.stringify(s.watch)})`,
  };
}

async function compareAll(lab: Lab): Promise<{ ok: boolean; detail: string[] }> {
  const store = storeLeases(lab);
  const results = await Promise.all(lab.nodes.map((n) => compareNode(lab, n, store)));
  return { ok: results.every((r) => r.ok), detail: results.map((r) => r.detail) };
}

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? (() => {});
  const missing = soakPrerequisites(hasBinary);
  if (missing.length > 0) throw new Error(`the soak needs ${missing.join(', ')}`);
  const liveness = o.livenessSeconds ?? 15;
  const settleMs = liveness * 1000 + 2000;
  const interval = o.echoIntervalMs ?? 200;
  const draw = o.draw ?? uniformDraw;
  const lab = new Lab({
    nodes: 3,
    backend: 'udp',
    ipv6: false,
    store: 'etcd',
    prefix: o.prefix,
    daemonArgs: [`-watch-liveness-seconds=${liveness}`, `-etcd-relist-seconds=${o.relistSeconds ?? 60}`],
    startTimeoutSec: 60,
    log,
  });
  o.onLab?.(() => lab.down());
  const probers: EchoProber[] = [];
  let frozen = false;
  try {
    await lab.up();
    const started = new Date().toISOString();
    const load0 = loadavg();
    const echoes: Echo[] = [];
    for (const a of lab.nodes) {
      for (const b of lab.nodes) {
        if (a !== b) probers.push(startEchoProber(a.pod, b.podIP, interval, (r) => echoes.push({ from: a.name, to: b.name, ...r })));
      }
    }
    const churn = new LeaseChurn(lab, new Set(lab.nodes.map(ownSubnet)));
    churn.start();
    const replacements: Record<string, number> = {};
    const addReplacements = (r: Record<string, number> | undefined): void => {
      for (const [k, v] of Object.entries(r ?? {})) replacements[k] = (replacements[k] ?? 0) + v;
    };
    const faults: SoakFault[] = [];
    const windows: FaultWindow[] = [];
    const t0 = Date.now();
    const endAt = t0 + o.seconds * 1000;
    log(`soak: ${o.seconds} s of chaos on 3 udp nodes (etcd store), liveness bound ${liveness} s, settle ${settleMs / 1000} s after each fault`);
    // The longest fault is 30 s (daemon restarts usually much less): start one only if it and its settle time fit.
    for (;;) {
      const gap = draw(3000, 20_000);
      if (Date.now() + gap + 30_000 + settleMs >= endAt) break;
      await sleep(gap);
      const kinds = o.kinds ?? FAULT_KINDS;
      const kind = kinds[Math.floor(Math.random() * kinds.length)]!;
      log(`soak: ${Math.round((Date.now() - t0) / 1000)} s: ${kind}...`);
      if (kind === 'etcd-sigstop') frozen = true;
      const f = await injectFault(kind, {
        lab,
        draw,
        setEtcdAvailable: (up) => churn.setEtcdAvailable(up),
        beforeKill: async (node) => addReplacements((await fetchStatus(lab.statusSocket(node), 2000).catch(() => undefined))?.watch?.replacements),
        log,
      });
      frozen = false;
      windows.push({ kind: f.kind, node: f.node, start: f.start, end: f.end, settleEnd: f.end + settleMs });
      await sleep(Math.max(0, f.end + settleMs - 2000 - Date.now()));
      const resume = churn.pause();
      await sleep(2000);
      const cp = await compareAll(lab);
      resume();
      faults.push({ ...f, checkpoint: { ok: cp.ok, detail: cp.detail.join('; ') } });
      log(`soak:   ${f.detail}; checkpoint ${cp.ok ? 'ok' : `FAILED: ${cp.detail.join('; ')}`}`);
    }
    await sleep(Math.max(0, endAt - Date.now()));
    await churn.stop();
    const churnEnd = Date.now();
    let final = await compareAll(lab);
    while (!final.ok && Date.now() - churnEnd < 20_000) {
      await sleep(250);
      final = await compareAll(lab);
    }
    const convergeMs = Date.now() - churnEnd;
    for (const p of probers.splice(0)) await p.stop();
    const daemonsAlive = lab.nodes.every((n) => n.pid !== undefined && isAlive(n.pid));
    for (const n of lab.nodes) addReplacements((await fetchStatus(lab.statusSocket(n), 2000).catch(() => undefined))?.watch?.replacements);
    const ledger = tallyEchoes(windows, echoes);
    const passed = ledger.countedLost === 0 && faults.every((f) => f.checkpoint.ok) && final.ok && daemonsAlive;
    return {
      tool: 'flannelctl bench --soak',
      started,
      seconds: o.seconds,
      livenessSeconds: liveness,
      settleMs,
      echoIntervalMs: interval,
      loadavg: { start: load0.map((x) => Math.round(x * 100) / 100), end: loadavg().map((x) => Math.round(x * 100) / 100) },
      faults,
      ledger,
      final: { ...final, convergeMs },
      replacements,
      churn: { writes: churn.writes, failures: churn.failures },
      daemonsAlive,
      passed,
      prefix: lab.set.prefix,
    };
  } finally {
    if (frozen) {
      try {
        lab.signalEtcd('SIGCONT');
      } catch {
        // etcd already gone
      }
    }
    for (const p of probers) await p.stop().catch(() => {});
    await lab.down();
    o.onLab?.(undefined);
  }
}
