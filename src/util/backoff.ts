// Retry delays for a remote API that failed: exponential, capped, jittered.
/**
 * The wait before retry number `attempt` (0-based): doubling from `initialMs`, capped at `maxMs`, then
 * "equal jitter" (a random point in the upper half). Without jitter every node of a cluster that lost
 * the API server at the same moment retries at the same moments too, so a recovering API server gets
 * each re-list of the whole cluster as one burst; client-go's reflector jitters for the same reason.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 16));
  return cap / 2 + (random() * cap) / 2;
}

/** A retry delay for logs: "40ms", "2.0s". */
export function formatDelay(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

