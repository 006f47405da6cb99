// What a lease store's watch is doing, for `flannelctl status` and /metrics: whether the current watch
// is confirmed live, when it last delivered something, when the store was last listed in full, and how
// often (and why) a watch was given up and replaced. Each store keeps one WatchHealth and updates it;
// the status snapshot reads it on demand.

export interface WatchStatus {
  /** "etcd", "kube" or "file". */
  store: string;
  /**
   * The current watch is known to work: etcd accepted it (and the last liveness probe on the same
   * client got through), the API server answered it with headers, or the file store's last scan worked.
   */
  confirmed: boolean;
  /** The last watch event (any kind, bookmarks included), ISO time, or "never". */
  lastEvent: string;
  /** The last complete list of the store, ISO time, or "never". */
  lastRelist: string;
  /** Complete lists so far (first list, periodic re-lists, re-lists after a failure). */
  relists: number;
  /** The liveness bound: a dead watch is replaced within this many seconds of the fault's end. */
  livenessSeconds: number;
  /** Watches given up and replaced, by reason; every reason the store can give is listed (0 until used). */
  replacements: Record<string, number>;
}

const iso = (ms: number | undefined): string => (ms === undefined ? 'never' : new Date(ms).toISOString());

export class WatchHealth<Reason extends string = string> {
  private confirmedNow = false;
  private lastEventAt?: number;
  private lastRelistAt?: number;
  private relists = 0;
  private readonly counts: Record<string, number>;

  constructor(
    readonly store: string,
    reasons: readonly Reason[],
    readonly livenessMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.counts = Object.fromEntries(reasons.map((r) => [r, 0]));
  }

  confirm(on: boolean): void {
    this.confirmedNow = on;
  }

  get confirmed(): boolean {
    return this.confirmedNow;
  }

  event(): void {
    this.lastEventAt = this.now();
  }

  relisted(): void {
    this.relists++;
    this.lastRelistAt = this.now();
  }

  replaced(reason: Reason): void {
    this.confirmedNow = false;
    this.counts[reason] = (this.counts[reason] ?? 0) + 1;
  }

  count(reason: Reason): number {
    return this.counts[reason] ?? 0;
  }

  snapshot(): WatchStatus {
    return {
      store: this.store,
      confirmed: this.confirmedNow,
      lastEvent: iso(this.lastEventAt),
      lastRelist: iso(this.lastRelistAt),
      relists: this.relists,
      livenessSeconds: Math.round(this.livenessMs / 100) / 10,
      replacements: { ...this.counts },
    };
  }
}

/** The default liveness bound (issue 29): 15 s from a fault's end to a replaced watch. */
export const DEFAULT_LIVENESS_MS = 15_000;
