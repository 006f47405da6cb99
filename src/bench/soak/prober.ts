// The soak's pod-to-pod echoes: our ICMP prober (src/probe/) sending one echo every interval from a
// pod's namespace for as long as the soak runs. Every echo is reported once, by the time it was sent:
// answered within 1 s, or lost (a timeout, an ICMP error, no route). Echoes still waiting when the soak
// stops are not reported.
import type { Namespace } from '../../lab/netns.js';
import { probe } from '../../probe/prober.js';

export interface EchoResult {
  /** Unix ms when the echo request was sent. */
  sentAt: number;
  ok: boolean;
}

export interface EchoProber {
  /** Stops probing and reports what was sent; echoes still waiting for their answer are not reported. */
  stop(): Promise<void>;
}

/** An echo counts as answered only if the answer came within this. */
export const ECHO_TIMEOUT_MS = 1000;

/** The prober's largest run (sequence numbers are 16 bits); a longer soak starts the next run at once. */
const ECHOES_PER_RUN = 65_535;

/** Sends one echo every `intervalMs` from `from` to `target` and reports each one's outcome. */
export function startEchoProber(from: Namespace, target: string, intervalMs: number, onResult: (r: EchoResult) => void): EchoProber {
  const stop = new AbortController();
  const done = (async () => {
    while (!stop.signal.aborted) {
      const r = await probe({ netns: from.name, target, count: ECHOES_PER_RUN, intervalMs, timeoutMs: ECHO_TIMEOUT_MS, signal: stop.signal });
      for (const x of r.replies) onResult({ sentAt: r.startedAtMs + x.sentAtMs, ok: true });
      for (const f of r.failures) if (f.reason !== 'stopped') onResult({ sentAt: r.startedAtMs + f.sentAtMs, ok: false });
    }
  })();
  return {
    stop: async () => {
      stop.abort();
      await done;
    },
  };
}
