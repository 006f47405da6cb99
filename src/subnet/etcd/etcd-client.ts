// The etcd client of a manager, kept alive: built from flannel's flags with gRPC keepalive, replaced as
// a whole (lease renewals included) when its connection or watch stream is found dead, so the next
// request and the re-list that follows run on a fresh connection instead of one stuck in TCP
// retransmission back-off or in a jammed client library.
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Etcd3 } from 'etcd3';
import type { IOptions, Watcher } from 'etcd3';
import { log } from '../../log.js';
import { sleep } from '../../util/sleep.js';
import type { WatchHealth } from '../watch-health.js';
import type { EtcdLivenessTimings } from './liveness.js';

export const DEFAULT_ETCD_ENDPOINTS = 'http://127.0.0.1:4001,http://127.0.0.1:2379';

/** Why a watch (and, except for `cancelled`, the whole client) was replaced. */
export const ETCD_REPLACEMENT_REASONS = ['probe', 'connection', 'stream-ended', 'library-error', 'relist-failed', 'cancelled'] as const;
export type EtcdReplacementReason = (typeof ETCD_REPLACEMENT_REASONS)[number];

export interface EtcdConnectionOptions {
  /** Endpoints, as a list or flannel's comma-separated `-etcd-endpoints` text. */
  endpoints: string | readonly string[];
  keyFile?: string;
  certFile?: string;
  caFile?: string;
  username?: string;
  password?: string;
}

export function splitEndpoints(endpoints: string | readonly string[]): string[] {
  const list = typeof endpoints === 'string' ? endpoints.split(',') : [...endpoints];
  return list.map((e) => e.trim()).filter((e) => e.length > 0);
}

/** etcd3 client options from flannel's flags; warns like flannel when TLS is off. */
export function etcdClientOptions(opts: EtcdConnectionOptions): IOptions {
  const hosts = splitEndpoints(opts.endpoints);
  if (hosts.length === 0) throw new Error(`-etcd-endpoints ${JSON.stringify(opts.endpoints)} is empty: give e.g. http://127.0.0.1:2379`);
  const options: IOptions = { hosts };
  const read = (flag: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`${flag} ${path} cannot be read: ${(e as Error).message}`);
    }
  };
  const clientCert = Boolean(opts.keyFile && opts.certFile);
  if (clientCert || opts.caFile) {
    // flannel ignores -etcd-cafile without a client cert; we use it to verify the server anyway.
    options.credentials = {
      rootCertificate: opts.caFile ? read('-etcd-cafile', opts.caFile) : Buffer.from(rootCertificates.join('\n')),
      ...(clientCert && opts.keyFile && opts.certFile
        ? { privateKey: read('-etcd-keyfile', opts.keyFile), certChain: read('-etcd-certfile', opts.certFile) }
        : {}),
    };
  }
  if (!clientCert) log.warning('no certificate provided: connecting to etcd with http. This is insecure');
  if (opts.username) options.auth = { username: opts.username, password: opts.password ?? '' };
  return options;
}

/**
 * The parts of etcd3 1.1.2's private WatchManager we touch: its stream handlers (guarded, below) and
 * its stream (for the documented test hook). Looked up by shape; if a library update changes them, the
 * guard and the hook are skipped and the liveness probe still catches a jam.
 */
interface WatchManagerInternals {
  state: number;
  stream?: { write(req: object): unknown; pause(): unknown };
  handleResponse(res: unknown): void;
  handleCreatedResponse(res: unknown): void;
}

function watchManagerOf(client: Etcd3): WatchManagerInternals | undefined {
  const wm: unknown = (client as unknown as { watchManager?: unknown }).watchManager;
  if (typeof wm !== 'object' || wm === null) return undefined;
  const o = wm as Record<string, unknown>;
  return typeof o.handleResponse === 'function' && typeof o.handleCreatedResponse === 'function' ? (wm as WatchManagerInternals) : undefined;
}

/**
 * etcd3's stream handler throws when a response names a watch id it does not know (the answer to a
 * progress request, or to a cancel of a watcher it already dropped). The throw escapes as an uncaught
 * exception (a daemon without a handler exits) and leaves the stream jammed: still "connected", no more
 * events, new watchers never connected. Catch it where it is thrown and hand it to `onError`, which
 * replaces the client.
 */
function guardStreamHandlers(client: Etcd3, onError: (e: Error) => void): void {
  const wm = watchManagerOf(client);
  if (!wm) {
    log.v(1).info('etcd3 library internals not as expected: its watch stream handlers are not guarded (the liveness probe still is)');
    return;
  }
  for (const name of ['handleResponse', 'handleCreatedResponse'] as const) {
    const original = wm[name].bind(wm);
    wm[name] = (res: unknown): void => {
      try {
        original(res);
      } catch (e) {
        onError(e instanceof Error ? e : new Error(String(e)));
      }
    };
  }
}

/** How the test hook jams the library's watch stream (see docs/reliability.md). */
export type JamKind = 'progress-request' | 'stall';

export class EtcdClientKeeper {
  private client: Etcd3;
  private gen = 0;
  /** Watchers created on the current client; cancelled when it is replaced. */
  private readonly watchers = new Set<Watcher>();
  private readonly listeners = new Set<(reason: EtcdReplacementReason) => void>();
  private closed = false;

  constructor(
    private readonly base: IOptions,
    private readonly timings: EtcdLivenessTimings,
    private readonly health: WatchHealth<EtcdReplacementReason>,
  ) {
    this.client = this.build();
  }

  get current(): Etcd3 {
    return this.client;
  }

  /** Bumped by every replacement: work started on an older client checks it before acting. */
  get generation(): number {
    return this.gen;
  }

  private build(): Etcd3 {
    const gen = this.gen;
    const client = new Etcd3({
      ...this.base,
      grpcOptions: {
        ...this.base.grpcOptions,
        'grpc.keepalive_time_ms': this.timings.keepaliveTimeMs,
        'grpc.keepalive_timeout_ms': this.timings.keepaliveTimeoutMs,
        // Pings only while a call (the watch stream) is open: etcd rejects pings without streams.
        'grpc.keepalive_permit_without_calls': 0,
        'grpc.initial_reconnect_backoff_ms': Math.min(1000, this.timings.retryCapMs),
        'grpc.max_reconnect_backoff_ms': this.timings.retryCapMs,
        // grpc-js shares connections between channels with equal options; a replacement must not get
        // the old (possibly dead) connection back, so each client generation has options of its own.
        'flannelts.client_generation': gen,
      },
    });
    guardStreamHandlers(client, (e) => {
      // Not from inside the library's stream handler: replace once the handler has returned.
      setImmediate(() => this.replace('library-error', `etcd3 library error in the watch stream: ${e.message}`, gen));
    });
    return client;
  }

  /** A watcher on the current client, tracked so that a replacement cancels it. Listeners go on before it connects. */
  watcher(make: (client: Etcd3) => Watcher): { watcher: Watcher; generation: number } {
    const w = make(this.client);
    this.watchers.add(w);
    return { watcher: w, generation: this.gen };
  }

  /**
   * Forgets a watcher. `cancel` false: the library has already dropped it (etcd cancelled it, or it
   * ended); cancelling it again would make etcd answer for a watch id the library no longer knows.
   */
  release(w: Watcher, cancel: boolean): void {
    if (!this.watchers.delete(w)) return;
    quiet(w);
    // Cancelling a disconnected watcher can wait for a reconnect; never block on it.
    if (cancel) void w.cancel().catch(() => {});
  }

  /** Called with the reason after every replacement (the new client is in place). */
  onReplaced(fn: (reason: EtcdReplacementReason) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Replaces the client: the watchers on the old one are cancelled (so the library stops reconnecting
   * them), the old client is closed, and listeners re-list on the new one. `generation`: the client the
   * caller found dead; a caller that is late (the client was replaced meanwhile) changes nothing.
   */
  replace(reason: EtcdReplacementReason, detail: string, generation = this.gen): boolean {
    if (this.closed || generation !== this.gen) return false;
    this.gen++;
    const old = this.client;
    const oldWatchers = [...this.watchers];
    this.watchers.clear();
    this.client = this.build();
    this.health.replaced(reason);
    log.warning(`etcd watch: replacing the etcd client and its connection (${reason}: ${detail}); listing again on a fresh connection`);
    for (const w of oldWatchers) {
      quiet(w);
      void w.cancel().catch(() => {});
    }
    old.close();
    for (const fn of [...this.listeners]) fn(reason);
    return true;
  }

  /**
   * TEST HOOK (documented in docs/reliability.md): jams the library's watch stream the way it jams on
   * its own. 'progress-request' sends a progress request on the stream (etcd answers with watch id -1,
   * which the library does not know: it throws from its stream handler); 'stall' stops the stream from
   * delivering anything while it stays connected, which is the state the throw leaves an unguarded
   * library in (no events, new watchers never connected), so only the liveness probe can notice it.
   * Waits up to `waitMs` for the stream to be connected.
   */
  async jamForTest(kind: JamKind, waitMs = 5000): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const wm = watchManagerOf(this.client);
      const stream = wm?.stream;
      if (wm && wm.state === 2 && stream) {
        if (kind === 'progress-request') stream.write({ progress_request: {} });
        else stream.pause();
        return;
      }
      if (!wm || Date.now() > deadline) throw new Error(`cannot jam the etcd3 watch stream: ${wm ? 'not connected' : 'library internals not found'}`);
      await sleep(20);
    }
  }

  close(): void {
    this.closed = true;
    // Cancelled first: a closed client still re-attaches the watchers it holds, forever.
    for (const w of this.watchers) {
      quiet(w);
      void w.cancel().catch(() => {});
    }
    this.watchers.clear();
    this.listeners.clear();
    this.client.close();
  }
}

/**
 * A watcher we give up: our handlers ignore it from now on (they check their generation), but a late
 * 'error' must still find a listener. The library's own listeners stay: its cancel waits on them.
 */
function quiet(w: Watcher): void {
  w.on('error', () => {});
}
