// A node reflector: list, then watch from the list's resourceVersion, keeping a local copy of every
// node and reporting changes. It replaces the client library's informer because that one stops for
// good on any error other than 410 (an API server restart, a refused connection) and never resyncs.
// Here every failure ends in "list again and diff against what we had", so no add, update or delete is
// lost across a broken watch; a clean server-side close resumes the watch from the last version; a
// watch the API server does not answer within the confirmation deadline, or that goes idle, is
// replaced (resuming from the last version: the server replays what was missed); and a periodic full
// re-list (flannel's 5 min resync) repairs anything else.
import { log, RateLimitedLog } from '../../log.js';
import type { NodeLike } from './annotations.js';
import { backoffDelay, formatDelay } from '../../util/backoff.js';
import { DEFAULT_LIVENESS_MS, WatchHealth } from '../watch-health.js';
import type { NodeSource } from './node-source.js';
import { WatchDeadlines, type DeadlineKind } from './watch-deadlines.js';

export type NodeChange = { type: 'upsert'; node: NodeLike; old?: NodeLike } | { type: 'delete'; node: NodeLike };

/** Why a node watch was given up and replaced. */
export const KUBE_REPLACEMENT_REASONS = ['no-headers', 'idle', 'ended', 'error', 'gone'] as const;
export type KubeReplacementReason = (typeof KUBE_REPLACEMENT_REASONS)[number];

export interface ReflectorOptions {
  source: NodeSource;
  onChanges(changes: NodeChange[]): void;
  /** Full re-list period (flannel's informer resync: 5 min). */
  resyncMs?: number;
  /** Retry pacing after a failed list or watch: doubles from initialMs up to maxMs, jittered. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /**
   * The liveness bound: a third of it for the API server to answer a watch, two thirds for a watch to
   * deliver something (event or bookmark), and retries never wait longer than two thirds of it.
   */
  livenessMs?: number;
  /** The watch's server-side timeout; default like client-go's reflector, 5 to 10 min at random. */
  watchTimeoutSeconds?: () => number;
  describeError?(e: unknown): string;
}

export const DEFAULT_RESYNC_MS = 5 * 60_000;

const nameOf = (n: NodeLike): string => n.metadata?.name ?? '';
const versionOf = (n: NodeLike): string => n.metadata?.resourceVersion ?? '';
const clientGoWatchTimeout = (): number => Math.floor(300 * (1 + Math.random()));

/** A watch stream's ERROR object (a metav1.Status). */
function statusCode(obj: unknown): number | undefined {
  if (typeof obj !== 'object' || obj === null) return undefined;
  const code = (obj as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** An error's HTTP status as the library reports it (statusCode on watch errors, code on ApiException). */
export function httpStatusOf(e: unknown): number | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const o = e as { statusCode?: unknown; code?: unknown };
  if (typeof o.statusCode === 'number') return o.statusCode;
  return typeof o.code === 'number' ? o.code : undefined;
}

export class NodeReflector {
  readonly nodes = new Map<string, NodeLike>();
  readonly counters = { lists: 0, listErrors: 0, watches: 0, watchErrors: 0, gone: 0, resyncs: 0 };
  readonly health: WatchHealth<KubeReplacementReason>;
  private resourceVersion = '';
  /** Bumped whenever a watch is replaced, so late callbacks of an aborted watch are ignored. */
  private generation = 0;
  private abortWatch?: () => void;
  private stopped = false;
  private resyncTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private wakeRetry?: () => void;
  private cycling = false;
  private cycleAgain = false;
  private failures = 0;
  /** Deadline expiries in a row (reset by any event): paces replacements of a watch that keeps hanging. */
  private deadlineMisses = 0;
  private readonly resyncMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly confirmMs: number;
  private readonly idleMs: number;
  private readonly watchTimeoutSeconds: () => number;
  private readonly describe: (e: unknown) => string;
  /**
   * A quiet cluster's watch is replaced every idle period, by design: warn about deadline replacements,
   * but not every time (each one is counted in /metrics and `flannelctl status`).
   */
  private readonly deadlineLog = new RateLimitedLog(3, 10 * 60_000);

  constructor(private readonly opts: ReflectorOptions) {
    const liveness = opts.livenessMs ?? DEFAULT_LIVENESS_MS;
    this.resyncMs = opts.resyncMs ?? DEFAULT_RESYNC_MS;
    this.confirmMs = Math.max(500, Math.round(liveness / 3));
    this.idleMs = Math.max(1000, liveness - this.confirmMs);
    this.backoffInitialMs = opts.backoffInitialMs ?? 500;
    // After an outage the next attempt must come soon enough for the bound to hold.
    this.backoffMaxMs = Math.min(opts.backoffMaxMs ?? 30_000, this.idleMs);
    this.watchTimeoutSeconds = opts.watchTimeoutSeconds ?? clientGoWatchTimeout;
    this.describe = opts.describeError ?? ((e) => (e instanceof Error ? e.message : String(e)));
    this.health = new WatchHealth('kube', KUBE_REPLACEMENT_REASONS, liveness);
  }

  /** The start-up line that states the bound and how it is kept. */
  describeLiveness(): string {
    return (
      `Node watch liveness bound ${formatDelay(this.health.livenessMs)}: the API server must answer a watch within ${formatDelay(this.confirmMs)}, ` +
      `an event or bookmark must arrive within ${formatDelay(this.idleMs)} (else the watch is replaced, resuming from the last resourceVersion), ` +
      `full re-list every ${formatDelay(this.resyncMs)}`
    );
  }

  /** Lists (retrying until it works or stop()), then watches. Resolves once the first list is applied. */
  async start(): Promise<void> {
    await this.cycle('initial list');
    if (this.stopped) return;
    this.resyncTimer = setInterval(() => {
      this.counters.resyncs++;
      void this.cycle('periodic resync');
    }, this.resyncMs);
    this.resyncTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.dropWatch();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
  }

  /** Aborts the current watch (its connection goes with it) and ignores whatever it still says. */
  private dropWatch(): void {
    this.generation++;
    this.health.confirm(false);
    const abort = this.abortWatch;
    this.abortWatch = undefined;
    abort?.();
  }

  private backoffMs(): number {
    return backoffDelay(this.failures, this.backoffInitialMs, this.backoffMaxMs);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeRetry = resolve;
      this.retryTimer = setTimeout(resolve, ms);
      this.retryTimer.unref();
    });
  }

  /** Stops the current watch, lists until a list succeeds, applies the diff, and watches again. */
  private async cycle(reason: string): Promise<void> {
    if (this.cycling) {
      this.cycleAgain = true;
      return;
    }
    this.cycling = true;
    try {
      do {
        this.cycleAgain = false;
        this.dropWatch();
        while (!this.stopped) {
          try {
            await this.relist();
            break;
          } catch (e) {
            this.counters.listErrors++;
            const wait = this.backoffMs();
            this.failures++;
            log.error(`Failed to list nodes (${reason}): ${this.describe(e)}; retrying in ${formatDelay(wait)}`);
            await this.sleep(wait);
          }
        }
        if (!this.stopped && !this.cycleAgain) this.startWatch();
      } while (this.cycleAgain && !this.stopped);
    } finally {
      this.cycling = false;
    }
  }

  /** One list; the difference to the local copy becomes changes (deletes of vanished nodes included). */
  private async relist(): Promise<void> {
    const list = await this.opts.source.list();
    this.counters.lists++;
    if (this.stopped) return;
    this.health.relisted();
    const changes: NodeChange[] = [];
    const seen = new Set<string>();
    for (const node of list.items) {
      const name = nameOf(node);
      if (name === '') continue;
      seen.add(name);
      const old = this.nodes.get(name);
      this.nodes.set(name, node);
      if (old && versionOf(old) !== '' && versionOf(old) === versionOf(node)) continue;
      changes.push(old ? { type: 'upsert', node, old } : { type: 'upsert', node });
    }
    for (const [name, old] of this.nodes) {
      if (!seen.has(name)) {
        this.nodes.delete(name);
        changes.push({ type: 'delete', node: old });
      }
    }
    this.resourceVersion = list.resourceVersion;
    if (changes.length > 0) this.opts.onChanges(changes);
  }

  /** A watch from the last resourceVersion, under its deadlines. Returns at once: a hung server cannot block anything. */
  private startWatch(): void {
    this.dropWatch();
    const gen = this.generation;
    const started = Date.now();
    this.counters.watches++;
    const deadlines = new WatchDeadlines(this.confirmMs, this.idleMs, (kind) => {
      if (gen === this.generation) this.onDeadline(kind);
    });
    const abort = this.opts.source.watch(
      { resourceVersion: this.resourceVersion, timeoutSeconds: this.watchTimeoutSeconds() },
      {
        onConfirmed: () => {
          if (gen !== this.generation) return;
          deadlines.confirmed();
          this.health.confirm(true);
        },
        onEvent: (type, obj) => {
          if (gen !== this.generation) return;
          deadlines.activity();
          this.deadlineMisses = 0;
          this.health.event();
          this.onWatchEvent(type, obj);
        },
        onDone: (err) => {
          if (gen !== this.generation) return;
          deadlines.stop();
          this.abortWatch = undefined;
          this.onWatchDone(err, Date.now() - started);
        },
      },
    );
    this.abortWatch = () => {
      deadlines.stop();
      abort();
    };
  }

  /** The watch missed a deadline: abort it (and its connection) and watch again from where it was. */
  private onDeadline(kind: DeadlineKind): void {
    if (this.stopped) return;
    this.dropWatch();
    this.health.replaced(kind);
    const wait = backoffDelay(this.deadlineMisses, this.backoffInitialMs, this.confirmMs);
    this.deadlineMisses++;
    const why =
      kind === 'no-headers'
        ? `the API server did not answer the watch within ${formatDelay(this.confirmMs)}`
        : `no event or bookmark for ${formatDelay(this.idleMs)}`;
    this.deadlineLog.warning(`Node watch replaced: ${why}; watching again from resourceVersion ${this.resourceVersion || '(now)'} in ${formatDelay(wait)}`);
    const gen = this.generation;
    void this.sleep(wait).then(() => {
      if (!this.stopped && gen === this.generation && !this.cycling) this.startWatch();
    });
  }

  private onWatchEvent(type: string, obj: unknown): void {
    if (type === 'ERROR') {
      const code = statusCode(obj);
      const message = typeof obj === 'object' && obj !== null ? String((obj as { message?: unknown }).message ?? '') : '';
      if (code === 410) {
        this.counters.gone++;
        this.health.replaced('gone');
        log.info(`Node watch expired (410 Gone: ${message}); listing again`);
      } else {
        this.counters.watchErrors++;
        this.health.replaced('error');
        log.error(`Node watch error event (code ${code ?? '?'}: ${message}); listing again`);
      }
      void this.cycle('watch error event');
      return;
    }
    // A working stream: the next failure starts the backoff from the beginning again.
    this.failures = 0;
    const node = obj as NodeLike;
    const name = nameOf(node);
    if (versionOf(node) !== '') this.resourceVersion = versionOf(node);
    if (type === 'BOOKMARK' || name === '') return;
    if (type === 'ADDED' || type === 'MODIFIED') {
      const old = this.nodes.get(name);
      this.nodes.set(name, node);
      if (old && versionOf(old) !== '' && versionOf(old) === versionOf(node)) return;
      this.opts.onChanges([old ? { type: 'upsert', node, old } : { type: 'upsert', node }]);
    } else if (type === 'DELETED') {
      const old = this.nodes.get(name);
      if (!old) return;
      this.nodes.delete(name);
      this.opts.onChanges([{ type: 'delete', node }]);
    }
  }

  private onWatchDone(err: unknown, lastedMs: number): void {
    if (this.stopped) return;
    if (err === undefined || err === null) {
      // API servers end watches routinely (timeoutSeconds, restarts): resume from the last version seen.
      // A watch that ends at once every time would spin, so those go through the backoff and a re-list.
      if (lastedMs >= 1000) {
        this.failures = 0;
        this.health.replaced('ended');
        this.startWatch();
        return;
      }
      this.failWatch(new Error('watch closed by the server right after it started'));
      return;
    }
    this.failWatch(err);
  }

  /** Any watch failure: wait (backoff), then list again and diff, so nothing that happened meanwhile is lost. */
  private failWatch(err: unknown): void {
    const status = httpStatusOf(err);
    this.dropWatch();
    if (status === 410) {
      this.counters.gone++;
      this.health.replaced('gone');
      log.info('Node watch expired (410 Gone); listing again');
      void this.cycle('watch expired');
      return;
    }
    this.counters.watchErrors++;
    this.health.replaced('error');
    const wait = this.backoffMs();
    this.failures++;
    log.error(`Node watch failed: ${this.describe(err)}; listing again in ${formatDelay(wait)}`);
    void this.sleep(wait).then(() => {
      if (!this.stopped) void this.cycle('watch failure');
    });
  }
}
