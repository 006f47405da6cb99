// The liveness bound of the etcd watch, turned into the timings that keep it. A partition, a frozen or
// restarted etcd or a jammed client library must not leave a node blind for longer than the bound
// after the fault ends; the timings below make every detection path fit into it.
import { formatDelay } from '../../util/backoff.js';

/**
 * etcd refuses HTTP/2 pings more often than its --grpc-keepalive-min-time (5 s by default): a client
 * that pings faster gets GOAWAY "too_many_pings" and loses its connection.
 */
export const ETCD_KEEPALIVE_MIN_TIME_MS = 5000;

export interface EtcdLivenessTimings {
  livenessMs: number;
  /** gRPC keepalive: an HTTP/2 ping after this long without one (never below etcd's minimum). */
  keepaliveTimeMs: number;
  /** ...and the connection counts as dead when the ping is not answered within this. */
  keepaliveTimeoutMs: number;
  /** A throwaway watcher on the same client must reach `connected` within probeTimeoutMs... */
  probeTimeoutMs: number;
  /** ...started this long after the previous probe ended. Interval + timeout = the bound. */
  probeIntervalMs: number;
  /** Bound on each list while recovering; a list that takes longer gets a fresh client. */
  recoveryListTimeoutMs: number;
  /** Longest pause between recovery attempts (they back off from the first retry delay up to this). */
  retryCapMs: number;
}

/**
 * One third of the bound each for "notice", "reconnect" and "list again": with the default 15 s, a
 * keepalive ping every 5 s with a 5 s timeout and a probe every 10 s with a 5 s timeout, so a dead
 * connection is noticed within 10 s and a jammed stream within 15 s, and after a fault's end a
 * recovery attempt with a fresh connection starts within 5 s and lists within 5 s more.
 */
export function etcdLivenessTimings(livenessMs: number): EtcdLivenessTimings {
  const third = Math.max(1000, Math.round(livenessMs / 3));
  return {
    livenessMs,
    keepaliveTimeMs: Math.max(ETCD_KEEPALIVE_MIN_TIME_MS, third),
    keepaliveTimeoutMs: third,
    probeTimeoutMs: third,
    probeIntervalMs: Math.max(1000, livenessMs - third),
    recoveryListTimeoutMs: third,
    retryCapMs: third,
  };
}

/** The start-up line that states the bound and how it is kept. */
export function describeEtcdLiveness(t: EtcdLivenessTimings, relistMs: number): string {
  const relist = relistMs > 0 ? `a full re-list every ~${formatDelay(relistMs)} (jittered)` : 'no periodic re-list';
  return (
    `etcd watch liveness bound ${formatDelay(t.livenessMs)}: gRPC keepalive ping every ${formatDelay(t.keepaliveTimeMs)} ` +
    `(timeout ${formatDelay(t.keepaliveTimeoutMs)}), a probe watcher every ${formatDelay(t.probeIntervalMs)} ` +
    `(must connect within ${formatDelay(t.probeTimeoutMs)}), ${relist}`
  );
}
