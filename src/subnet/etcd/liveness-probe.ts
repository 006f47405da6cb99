// The etcd watch's liveness probe: every so often a throwaway watcher is created on the same client
// as the lease watch and must be confirmed by etcd (`connected`) within a bound. A connection that
// keepalive still finds alive but whose watch stream no longer moves (a jammed client library, a
// stream etcd stopped serving) fails it, and the whole client is replaced. Not a progress request
// (the library cannot route the answer and jams) and not the cluster revision (unrelated writes move
// it while our watch may be dead).
import { log } from '../../log.js';
import { formatDelay } from '../../util/backoff.js';
import type { WatchHealth } from '../watch-health.js';
import type { EtcdClientKeeper, EtcdReplacementReason } from './etcd-client.js';
import type { EtcdLivenessTimings } from './liveness.js';

export class EtcdLivenessProbe {
  private timer?: NodeJS.Timeout;
  private running = false;
  private stopped = true;

  constructor(
    private readonly keeper: EtcdClientKeeper,
    /** A key nobody writes: etcd confirms a watch on it without sending anything else. */
    private readonly key: string,
    private readonly timings: EtcdLivenessTimings,
    private readonly health: WatchHealth<EtcdReplacementReason>,
    /** False while a watch is re-listing after a failure: recovery replaces clients on its own then. */
    private readonly eligible: () => boolean,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.timings.probeIntervalMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.running) return;
    this.running = true;
    try {
      if (this.eligible()) await this.probeOnce();
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  /** One probe; true when etcd confirmed it in time. A failure replaces the client. */
  async probeOnce(): Promise<boolean> {
    const started = Date.now();
    const { watcher, generation } = this.keeper.watcher((c) => c.watch().key(this.key).watcher());
    let timer: NodeJS.Timeout | undefined;
    const ok = await new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), this.timings.probeTimeoutMs);
      watcher.once('connected', () => resolve(true));
    });
    clearTimeout(timer);
    if (generation !== this.keeper.generation) return ok; // replaced meanwhile: nothing to judge
    if (ok) {
      this.keeper.release(watcher, true);
      this.health.confirm(true);
      log.v(4).info(`etcd watch liveness probe confirmed in ${Date.now() - started} ms`);
      return true;
    }
    this.keeper.replace('probe', `a probe watcher was not confirmed by etcd within ${formatDelay(this.timings.probeTimeoutMs)}`, generation);
    return false;
  }
}
