// Waiting for the network config the way flanneld does: a missing or unreadable config is not fatal at
// start (the operator may write it a moment later); log "Couldn't fetch network config" and retry.
import type { NetworkConfig } from '../config/types.js';
import { log } from '../log.js';
import { sleepUnlessAborted } from '../util/sleep.js';

export interface ConfigWaitOptions {
  signal?: AbortSignal;
  initialDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * Calls `fetchConfig` until it succeeds, with exponential backoff. Every failure (missing, unreachable
 * or invalid config) is logged and retried: an operator fixing the config should not need a restart.
 */
export async function waitForNetworkConfig(
  fetchConfig: () => Promise<NetworkConfig>,
  opts: ConfigWaitOptions = {},
): Promise<NetworkConfig> {
  let delay = opts.initialDelayMs ?? 1000;
  const maxDelay = opts.maxDelayMs ?? 30_000;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      return await fetchConfig();
    } catch (e) {
      opts.signal?.throwIfAborted();
      log.error(`Couldn't fetch network config: ${(e as Error).message}`);
    }
    if (!(await sleepUnlessAborted(delay, opts.signal))) opts.signal?.throwIfAborted();
    delay = Math.min(delay * 2, maxDelay);
  }
}
