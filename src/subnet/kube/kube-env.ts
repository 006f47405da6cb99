// The environment variables flannel's Kubernetes subnet manager reads besides NODE_NAME / POD_NAME /
// POD_NAMESPACE (kube-manager.ts resolveNodeName): EVENT_QUEUE_DEPTH and CONT_WHEN_CACHE_NOT_READY,
// with flannel's meaning and flannel's parsing.
import { KubeConfigError } from './annotations.js';

/** flannel's lease-event channel size when EVENT_QUEUE_DEPTH is unset, ≤ 0 or empty. */
export const DEFAULT_EVENT_QUEUE_DEPTH = 5000;
/** How long flannel waits for the node informer's first sync before giving up (nodeControllerSyncTimeout). */
export const NODE_CACHE_SYNC_TIMEOUT_MS = 10 * 60_000;

export interface KubeEnv {
  /** EVENT_QUEUE_DEPTH: lease events handed to the backend at once, and waiting before "buffer full". */
  eventQueueDepth: number;
  /** CONT_WHEN_CACHE_NOT_READY=true: start without the node cache when it has not synced in 10 minutes. */
  continueWhenCacheNotReady: boolean;
}

/** Go's strconv.Atoi: an optional sign and decimal digits, nothing else. */
function atoi(s: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Reads both variables; a non-number EVENT_QUEUE_DEPTH is fatal (flannel: exit 1), ≤ 0 means the default. */
export function readKubeEnv(env: NodeJS.ProcessEnv): KubeEnv {
  let eventQueueDepth = DEFAULT_EVENT_QUEUE_DEPTH;
  const depth = env.EVENT_QUEUE_DEPTH ?? '';
  if (depth !== '') {
    const n = atoi(depth);
    if (n === undefined) {
      throw new KubeConfigError(`env EVENT_QUEUE_DEPTH=${depth} format error: not a whole number (the lease-event queue size; unset for ${DEFAULT_EVENT_QUEUE_DEPTH})`);
    }
    if (n > 0) eventQueueDepth = n;
  }
  // flannel compares with the exact string "true".
  return { eventQueueDepth, continueWhenCacheNotReady: env.CONT_WHEN_CACHE_NOT_READY === 'true' };
}
