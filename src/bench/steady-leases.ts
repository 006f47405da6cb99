// The bench's steady-lease step: daemon memory while the lease count stays at ~1,000 but the leases keep
// changing. Two real udp daemons share a file store seeded with N fake peer leases; then for a fixed
// time R events/s update a lease in place (new public IP), delete one, or re-add a deleted one, so the
// count stays within a few of N. RSS of both daemons is sampled throughout. The step passes only when
// each daemon's peers, public IPs and data-plane routes end exactly equal to the store (no event lost);
// memory is reported, not judged: a budget belongs to the reader of the series, not to a timed check.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { formatCIDR, mustParseIP, parseCIDR } from '../ip/index.js';
import { encodeLeaseFile } from '../subnet/file/lease-file.js';
import { makeSubnetKey } from '../subnet/lease.js';
import { writeFileAtomic } from '../subnet/subnetenv.js';
import { fetchStatus } from '../status.js';
import { Lab, type LabNode } from '../lab/lab.js';
import { isAlive } from '../util/process.js';
import { comparePeers } from './peer-compare.js';
import { rssMiB } from './procstat.js';
import { sleep } from '../util/sleep.js';

export interface SteadyLeasesOptions {
  /** Fake peer leases held in the store (default 1,000). */
  leases?: number;
  /** Lease events per second (default 100). */
  rate?: number;
  /** Length of the churn (default 60 s). */
  seconds?: number;
  /** RSS sampling period (default 5 s). */
  sampleMs?: number;
  /** Namespace prefix (default: a fresh per-run one). */
  prefix?: string;
  log?: (line: string) => void;
  /** Gets the lab's teardown while it exists, so Ctrl-C can remove it. */
  onLab?: (teardown: (() => Promise<void>) | undefined) => void;
}

export interface RssSummary {
  node: string;
  start: number;
  min: number;
  max: number;
  end: number;
}

export interface SteadyLeasesResult {
  leases: number;
  rate: number;
  seconds: number;
  events: { updated: number; deleted: number; readded: number; perSecond: number };
  /** RSS of each daemon in MiB, every sampleMs from the start of the churn (s: seconds since then). */
  samples: Array<{ s: number; rssMiB: number[] }>;
  rss: RssSummary[];
  /** Leases in the store at the end (fake and real). */
  storeLeases: number;
  /** Every daemon's peers, public IPs and routes equal the store's leases. */
  converged: boolean;
  /** Per node: what it reported at the end (or why it did not converge). */
  detail: string[];
  /** From the last event until both daemons matched the store. */
  convergeMs: number;
  prefix: string;
}

/** A /28 per lease: 198.19.0.0/16 has 4,096 of them, room for the fake peers and the real nodes. */
const SUBNET_LEN = 28;
const round1 = (x: number): number => Math.round(x * 10) / 10;

/** Fake peer i's subnet: from 198.19.16.0/28 upwards, clear of the low subnets the real nodes take. */
const fakeSubnet = (i: number): string => `198.19.${16 + Math.floor(i / 16)}.${(i % 16) * 16}/${SUBNET_LEN}`;
/** A public IP for a fake peer (198.18.4.1-7.250: never used for traffic); a new `gen` moves it. */
function fakePublicIP(i: number, gen: number): string {
  const j = (i + gen * 7) % 1000;
  return `198.18.${4 + Math.floor(j / 250)}.${(j % 250) + 1}`;
}

/** The fake part of the store: writes lease files and remembers what is live. */
class FakeLeases {
  /** subnet (CIDR text) -> public IP of every live fake lease. */
  readonly live = new Map<string, string>();

  constructor(private readonly dir: string) {}

  put(subnet: string, publicIP: string): void {
    const text = encodeLeaseFile({ publicIP: mustParseIP(publicIP), backendType: 'udp' }, new Date(Date.now() + 3600_000));
    writeFileAtomic(join(this.dir, makeSubnetKey(parseCIDR(subnet))), text);
    this.live.set(subnet, publicIP);
  }

  remove(subnet: string): void {
    rmSync(join(this.dir, makeSubnetKey(parseCIDR(subnet))));
    this.live.delete(subnet);
  }
}

/** What a daemon should report: every fake lease plus the other real node. */
async function compare(lab: Lab, n: LabNode, fake: FakeLeases): Promise<{ ok: boolean; detail: string }> {
  const other = lab.nodes.find((x) => x !== n)!;
  const want = new Map(fake.live);
  want.set(formatCIDR(parseCIDR(other.subnetEnv.FLANNEL_SUBNET!)!), other.underlayIP);
  const s = await fetchStatus(lab.statusSocket(n));
  const { ok, missing, extra, wrongIP, peers } = comparePeers(s, want);
  const detail = `${n.name}: ${peers} peers (want ${want.size}), routes ${JSON.stringify(s.routes)}` +
    (ok ? '' : `; missing ${missing.slice(0, 3).join(' ')}${missing.length > 3 ? '...' : ''} (${missing.length}), extra ${extra.length}, stale public IP ${wrongIP.length}`);
  return { ok, detail };
}

export async function runSteadyLeases(o: SteadyLeasesOptions = {}): Promise<SteadyLeasesResult> {
  const leases = o.leases ?? 1000;
  const rate = o.rate ?? 100;
  const seconds = o.seconds ?? 60;
  const sampleMs = o.sampleMs ?? 5000;
  const log = o.log ?? (() => {});
  if (leases > 4000) throw new Error(`steady leases: ${leases} does not fit 198.19.0.0/16 in /${SUBNET_LEN}s`);
  let fake: FakeLeases | undefined;
  const lab = new Lab({
    nodes: 2,
    backend: 'udp',
    ipv6: false,
    subnetLen: SUBNET_LEN,
    prefix: o.prefix,
    // Seeded before the daemons start: they load the leases in one scan, then the churn starts from a
    // settled table (the growth phase is what lease-churn.test.ts samples).
    seedStore: (dir) => {
      fake = new FakeLeases(dir);
      for (let i = 0; i < leases; i++) fake.put(fakeSubnet(i), fakePublicIP(i, 0));
    },
    startTimeoutSec: 60,
  });
  o.onLab?.(() => lab.down());
  try {
    await lab.up();
    const store = fake!;
    const pids = (): number[] => lab.nodes.map((n) => n.pid ?? -1);
    const samples: SteadyLeasesResult['samples'] = [];
    const t0 = Date.now();
    const sample = (): void => {
      samples.push({ s: Math.round((Date.now() - t0) / 100) / 10, rssMiB: pids().map((p) => (isAlive(p) ? round1(rssMiB(p)) : NaN)) });
    };
    sample();
    const timer = setInterval(sample, sampleMs);
    const gen = new Map<number, number>();
    const gone: number[] = [];
    const events = { updated: 0, deleted: 0, readded: 0, perSecond: 0 };
    const total = Math.round(seconds * rate);
    log(`steady leases: ${leases} fake peer leases, ${rate} events/s for ${seconds} s`);
    try {
      for (let k = 0; k < total; k++) {
        const due = t0 + (k * 1000) / rate;
        if (due > Date.now()) await sleep(due - Date.now());
        const r = Math.random();
        // Re-add a deleted lease a third of the time (always once 10 are missing), so the count stays
        // within 10 of `leases`; otherwise update one in place or delete one.
        if (gone.length > 0 && (r < 1 / 3 || gone.length >= 10)) {
          const i = gone.shift()!;
          gen.set(i, (gen.get(i) ?? 0) + 1);
          store.put(fakeSubnet(i), fakePublicIP(i, gen.get(i)!));
          events.readded++;
        } else {
          let i = Math.floor(Math.random() * leases);
          while (!store.live.has(fakeSubnet(i))) i = (i + 1) % leases;
          if (r < 2 / 3) {
            gen.set(i, (gen.get(i) ?? 0) + 1);
            store.put(fakeSubnet(i), fakePublicIP(i, gen.get(i)!));
            events.updated++;
          } else {
            store.remove(fakeSubnet(i));
            gone.push(i);
            events.deleted++;
          }
        }
      }
    } finally {
      clearInterval(timer);
    }
    const churnEnd = Date.now();
    events.perSecond = Math.round((total * 1000) / (churnEnd - t0));
    for (const [k, p] of pids().entries()) if (!isAlive(p)) throw new Error(`the daemon of ${lab.nodes[k]!.name} exited during the churn:\n${lab.daemonLog(lab.nodes[k]!, 20)}`);

    // Converged: both daemons report exactly the store (the file store's re-scan runs every second).
    let results: Array<{ ok: boolean; detail: string }> = [];
    while (Date.now() - churnEnd < 20_000) {
      results = await Promise.all(lab.nodes.map((n) => compare(lab, n, store)));
      if (results.every((x) => x.ok)) break;
      await sleep(250);
    }
    const convergeMs = Date.now() - churnEnd;
    sample();
    const rss = lab.nodes.map((n, k): RssSummary => {
      const xs = samples.map((x) => x.rssMiB[k]!).filter((x) => !Number.isNaN(x));
      return { node: n.name, start: xs[0]!, min: Math.min(...xs), max: Math.max(...xs), end: xs.at(-1)! };
    });
    return {
      leases,
      rate,
      seconds,
      events,
      samples,
      rss,
      storeLeases: store.live.size + lab.nodes.length,
      converged: results.every((x) => x.ok),
      detail: results.map((x) => x.detail),
      convergeMs,
      prefix: lab.set.prefix,
    };
  } finally {
    await lab.down();
    o.onLab?.(undefined);
  }
}

/** The step's paragraph in the bench report. */
export function formatSteadyLeases(r: SteadyLeasesResult): string {
  const e = r.events;
  const lines = [
    `steady leases: ${r.leases} fake peer leases in the file store, 2 udp daemons, ${e.perSecond} events/s for ${r.seconds} s ` +
      `(${e.updated} updated in place, ${e.deleted} deleted, ${e.readded} re-added; ${r.storeLeases} leases at the end)`,
    `converged: ${r.converged ? `yes, ${Math.round(r.convergeMs)} ms after the last event` : 'NO'}; ${r.detail.join('; ')}`,
    '',
    '| node | RSS MiB start | min | max | end |',
    '| ---- | ------------- | --- | --- | --- |',
    ...r.rss.map((x) => `| ${x.node} | ${x.start} | ${x.min} | ${x.max} | ${x.end} |`),
    '',
    `RSS MiB series (s: ${r.rss.map((x) => x.node).join('/')}): ${r.samples.map((x) => `${x.s}:${x.rssMiB.join('/')}`).join(' ')}`,
  ];
  return lines.join('\n') + '\n';
}

