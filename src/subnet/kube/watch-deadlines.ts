// The two deadlines of a node watch. Confirmation: the API server must answer the request (headers)
// within confirmMs — an API server that accepts the connection and never answers is otherwise
// indistinguishable from a slow one. Idleness: once confirmed, something (an event or a bookmark) must
// arrive within idleMs — a stream that stops without closing looks exactly like a quiet cluster, so a
// quiet stream is replaced too, resuming from the last resourceVersion (no re-list, nothing missed).

export type DeadlineKind = 'no-headers' | 'idle';

export class WatchDeadlines {
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    confirmMs: number,
    private readonly idleMs: number,
    private readonly onExpired: (kind: DeadlineKind) => void,
  ) {
    this.arm('no-headers', confirmMs);
  }

  private arm(kind: DeadlineKind, ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.stopped = true;
      this.onExpired(kind);
    }, ms);
    this.timer.unref();
  }

  /** Headers arrived: from now on the idle deadline applies. */
  confirmed(): void {
    this.arm('idle', this.idleMs);
  }

  /** Anything arrived on the stream. */
  activity(): void {
    this.arm('idle', this.idleMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
