// One watch of flannel's leases in etcd: list, then watch from the list's revision + 1, keeping what the
// node believes (`known`) and emitting only differences. Every path that changes `known` runs in one
// queue, in order: watch events, the periodic re-list (jittered; heals any event the watch missed), and
// the re-list after a failure (etcd cancelled the watch, or the client was replaced because its
// connection, stream or library died). Events at or below the revision of the last list are already
// in it and are skipped, so an event and a re-list never undo each other.
import type { IWatchResponse, Watcher } from 'etcd3';
import { log } from '../../log.js';
import { formatDelay } from '../../util/backoff.js';
import { sleep } from '../../util/sleep.js';
import { DeadlineError } from '../../util/timeout.js';
import type { WatchHealth } from '../watch-health.js';
import type { Lease, LeaseEvent } from '../types.js';
import type { EtcdClientKeeper, EtcdReplacementReason } from './etcd-client.js';
import type { KnownLease, LeaseList, LeaseReader } from './lease-reader.js';
import { NEVER_EXPIRES } from './lease-reader.js';
import type { EtcdLivenessTimings } from './liveness.js';

export interface EtcdLeaseWatchOptions {
  keeper: EtcdClientKeeper;
  reader: LeaseReader;
  health: WatchHealth<EtcdReplacementReason>;
  timings: EtcdLivenessTimings;
  /** Period of the full re-list (jittered ±25 %); 0: none. */
  relistMs: number;
  /** First delay before listing again after a failure (doubles up to the timings' retry cap). */
  retryMs: number;
  onEvents(events: LeaseEvent[]): void;
  /** Test seam: runs between a list and the watch that follows it. */
  beforeWatchStart?: () => Promise<void>;
  random?: () => number;
}

/** etcd3 reports a watch stream that ended (rather than failed) as this error. */
const isStreamEnded = (e: Error): boolean => e.name === 'EtcdWatchStreamEnded' || /stream ended/i.test(e.message);

export class EtcdLeaseWatch {
  readonly snapshot: Lease[];
  private known: Map<string, KnownLease>;
  /** Revision of the last list applied: watch events at or below it are already in `known`. */
  private listRevision: bigint;
  private closed = false;
  private watcher?: Watcher;
  /** Bumped whenever the watcher is given up, so its late callbacks are ignored. */
  private generation = 0;
  private queue: Promise<void> = Promise.resolve();
  private recovering = false;
  private relistTimer?: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private readonly random: () => number;

  private constructor(
    private readonly o: EtcdLeaseWatchOptions,
    first: LeaseList,
  ) {
    this.known = first.leases;
    this.listRevision = BigInt(first.revision);
    this.snapshot = [...first.leases.values()].map((k) => k.lease);
    this.random = o.random ?? Math.random;
    this.unsubscribe = o.keeper.onReplaced(() => this.onClientReplaced());
  }

  static async start(o: EtcdLeaseWatchOptions): Promise<EtcdLeaseWatch> {
    const first = await o.reader.list();
    o.health.relisted();
    const w = new EtcdLeaseWatch(o, first);
    await w.startWatch();
    w.scheduleRelist();
    return w;
  }

  /** Not re-listing after a failure (the liveness probe runs only then). */
  get steady(): boolean {
    return !this.recovering && !this.closed;
  }

  private get prefix(): string {
    return this.o.reader.subnetsPrefix;
  }

  private deliver(events: LeaseEvent[]): void {
    if (events.length > 0 && !this.closed) this.o.onEvents(events);
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((e: unknown) => log.error(`etcd watch on ${this.prefix}: ${(e as Error).message}`));
  }

  private async startWatch(): Promise<void> {
    const gen = ++this.generation;
    await this.o.beforeWatchStart?.();
    if (this.closed || gen !== this.generation) return;
    const from = (this.listRevision + 1n).toString();
    // watcher() rather than create(): listeners go on before the stream connects, so no response can
    // be emitted before we listen. Connection failures arrive as 'disconnected'/'error' below.
    const { watcher: w, generation: clientGen } = this.o.keeper.watcher((c) => c.watch().prefix(this.prefix).startRevision(from).watcher());
    this.watcher = w;
    w.on('connected', () => {
      if (gen === this.generation) this.o.health.confirm(true);
    });
    w.on('data', (res: IWatchResponse) => {
      if (gen !== this.generation) return;
      this.o.health.event();
      // Serialised: TTL look-ups are async and events must stay in order.
      this.enqueue(() => this.applyResponse(res, gen));
    });
    // 'error': etcd cancelled the watch (the library has dropped it). etcd 3.4 cancels a watch whose
    // start revision was compacted with an empty reason and the library drops compact_revision; say
    // what it most likely was. The client is fine: list again on it.
    w.on('error', (e: Error) => {
      if (gen !== this.generation || this.closed) return;
      const why = /canceled:\s*$/.test(e.message) ? `${e.message.trim()} (start revision probably compacted)` : e.message;
      this.giveUpWatcher(false);
      this.o.health.replaced('cancelled');
      log.warning(`etcd watch on ${this.prefix} interrupted (${why}); listing again and resuming`);
      this.recover();
    });
    // 'disconnected' (the stream failed: keepalive timeout, connection lost) and 'end' (the stream
    // ended without our cancel): the client's connection is suspect, so the whole client goes.
    const lost = (reason: EtcdReplacementReason, detail: string): void => {
      if (gen !== this.generation || this.closed) return;
      if (!this.o.keeper.replace(reason, detail, clientGen)) this.recover();
    };
    w.on('disconnected', (e: Error) =>
      lost(isStreamEnded(e) ? 'stream-ended' : 'connection', /Connection dropped/.test(e.message) ? `${e.message} (keepalive timeout or connection lost)` : e.message),
    );
    w.on('end', () => lost('stream-ended', 'the watch stream ended'));
  }

  private async applyResponse(res: IWatchResponse, gen: number): Promise<void> {
    if (gen !== this.generation || this.closed) return;
    const fresh = res.events.filter((ev) => BigInt(ev.kv.mod_revision) > this.listRevision);
    const exp = await this.o.reader.expirations(fresh.filter((ev) => ev.type === 'Put').map((ev) => ev.kv));
    // A re-list may have been applied while the TTLs were read: it is newer than these events.
    if (gen !== this.generation || this.closed) return;
    const events: LeaseEvent[] = [];
    for (const ev of fresh) {
      if (BigInt(ev.kv.mod_revision) <= this.listRevision) continue;
      const key = ev.kv.key.toString();
      const before = this.known.get(key);
      if (ev.type === 'Put') {
        const lease = this.o.reader.decode(ev.kv, exp.get(key) ?? NEVER_EXPIRES);
        if (lease) {
          this.known.set(key, { lease, modRevision: ev.kv.mod_revision });
          events.push({ type: 'added', lease });
        } else if (before) {
          // A valid lease overwritten with garbage is gone as far as routing is concerned.
          this.known.delete(key);
          events.push({ type: 'removed', lease: before.lease });
        }
      } else {
        this.o.reader.forget(key);
        if (before) {
          this.known.delete(key);
          events.push({ type: 'removed', lease: before.lease });
        }
      }
    }
    this.deliver(events);
  }

  /** A list becomes what the node believes; the difference goes out as events. */
  private applyList(now: LeaseList): number {
    const events: LeaseEvent[] = [];
    for (const [key, old] of this.known) if (!now.leases.has(key)) events.push({ type: 'removed', lease: old.lease });
    for (const [key, cur] of now.leases) {
      if (this.known.get(key)?.modRevision !== cur.modRevision) events.push({ type: 'added', lease: cur.lease });
    }
    this.known = now.leases;
    this.listRevision = BigInt(now.revision);
    this.o.health.relisted();
    this.deliver(events);
    return events.length;
  }

  private giveUpWatcher(cancel: boolean): void {
    this.generation++;
    const w = this.watcher;
    this.watcher = undefined;
    if (w) this.o.keeper.release(w, cancel);
  }

  /** The keeper replaced the client (its watchers, ours included, are cancelled): list again on the new one. */
  private onClientReplaced(): void {
    if (this.closed) return;
    this.generation++;
    this.watcher = undefined;
    this.recover();
  }

  /** Lists until it works (each failed attempt on a fresh client), applies the difference, watches again. */
  private recover(): void {
    if (this.recovering || this.closed) return;
    this.recovering = true;
    this.o.health.confirm(false);
    this.enqueue(async () => {
      try {
        await this.recoverLoop();
      } finally {
        this.recovering = false;
      }
    });
  }

  private async recoverLoop(): Promise<void> {
    for (let delay = this.o.retryMs; !this.closed; delay = Math.min(delay * 2, this.o.timings.retryCapMs)) {
      const clientGen = this.o.keeper.generation;
      try {
        const now = await this.o.reader.list(this.o.timings.recoveryListTimeoutMs);
        if (this.closed) return;
        this.applyList(now);
        this.recovering = false;
        await this.startWatch();
        return;
      } catch (e) {
        const msg = (e as Error).message;
        log.error(`etcd watch: re-list of ${this.prefix} failed: ${msg}; retrying in ${formatDelay(delay)}`);
        // The next attempt gets a fresh connection: one stuck in TCP back-off could take a minute to
        // notice that the fault is over. A client closed under us (replaced meanwhile) is no news.
        if (e instanceof DeadlineError || !/closed/i.test(msg)) this.o.keeper.replace('relist-failed', msg, clientGen);
        await sleep(delay);
      }
    }
  }

  private scheduleRelist(): void {
    if (this.o.relistMs <= 0 || this.closed) return;
    // Jittered, so the nodes of a cluster started together do not all re-list in the same second.
    const delay = this.o.relistMs * (0.75 + 0.5 * this.random());
    this.relistTimer = setTimeout(() => {
      this.enqueue(() => this.periodicRelist());
      this.scheduleRelist();
    }, delay);
    this.relistTimer.unref();
  }

  private async periodicRelist(): Promise<void> {
    if (this.closed || this.recovering) return;
    try {
      const now = await this.o.reader.list();
      if (this.closed || this.recovering) return;
      const changes = this.applyList(now);
      if (changes > 0) log.v(1).info(`etcd periodic re-list of ${this.prefix}: ${changes} change(s) applied`);
    } catch (e) {
      log.warning(`etcd periodic re-list of ${this.prefix} failed: ${(e as Error).message}; next one on schedule`);
    }
  }

  /** TEST HOOK: a periodic re-list now (queued behind pending events). */
  relistNow(): Promise<void> {
    this.enqueue(() => this.periodicRelist());
    return this.queue;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.relistTimer) clearTimeout(this.relistTimer);
    this.unsubscribe();
    this.giveUpWatcher(true);
  }
}
