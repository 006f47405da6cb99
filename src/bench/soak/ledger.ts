// The soak's accounting (docs/reliability.md defines it): every echo is attributed, by the time it was
// sent, to the fault active then, to the settle time after a fault (not counted), or to steady time;
// echoes from or to a node whose daemon was killed, sent before that daemon was back, are lost by
// design and counted apart. Pure, so the definition is unit-tested.

export const FAULT_KINDS = ['etcd-restart', 'etcd-sigstop', 'partition', 'daemon-kill'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultWindow {
  kind: FaultKind;
  /** The node it hit (partition, daemon-kill). */
  node?: string;
  /** Unix ms: the fault began... */
  start: number;
  /** ...and ended (daemon-kill: the restarted daemon knew its peers again). */
  end: number;
  /** end + the settle time. */
  settleEnd: number;
}

export interface Echo {
  from: string;
  to: string;
  sentAt: number;
  ok: boolean;
}

export interface Tally {
  sent: number;
  lost: number;
}

export interface KindTally {
  faults: number;
  /** Echoes sent while a fault of this kind was active (those lost by design excluded). */
  during: Tally;
  /** daemon-kill: echoes from or to the killed node before its daemon was back. */
  byDesign: Tally;
  /** Echoes sent during the settle time after faults of this kind (reported, not counted). */
  settling: Tally;
}

export interface Ledger {
  byKind: Record<FaultKind, KindTally>;
  steady: Tally;
  /** Echoes that count (during faults and steady) and were lost. */
  countedLost: number;
}

const tally = (): Tally => ({ sent: 0, lost: 0 });
const add = (t: Tally, ok: boolean): void => {
  t.sent++;
  if (!ok) t.lost++;
};

export function tallyEchoes(windows: readonly FaultWindow[], echoes: readonly Echo[]): Ledger {
  const byKind = Object.fromEntries(FAULT_KINDS.map((k) => [k, { faults: 0, during: tally(), byDesign: tally(), settling: tally() }])) as Record<FaultKind, KindTally>;
  for (const w of windows) byKind[w.kind].faults++;
  const steady = tally();
  const sorted = [...windows].sort((a, b) => a.start - b.start);
  for (const e of echoes) {
    const w = sorted.find((x) => e.sentAt >= x.start && e.sentAt < x.settleEnd);
    if (!w) {
      add(steady, e.ok);
      continue;
    }
    const k = byKind[w.kind];
    if (e.sentAt >= w.end) add(k.settling, e.ok);
    else if (w.kind === 'daemon-kill' && (e.from === w.node || e.to === w.node)) add(k.byDesign, e.ok);
    else add(k.during, e.ok);
  }
  const countedLost = steady.lost + FAULT_KINDS.reduce((n, kind) => n + byKind[kind].during.lost, 0);
  return { byKind, steady, countedLost };
}
