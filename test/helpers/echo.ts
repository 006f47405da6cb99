// ICMP echoes for the netns tests, sent by our prober (src/probe/) instead of `ping`, so the engine and
// lab tests need no optional package. The same echo requests as ping's (64 bytes by default, `size` for
// ping -s), the same schedule (intervalMs for -i, timeoutMs for -W) and the same counts to assert on.
import { probe, type ProbeResult } from '../../src/probe/prober.js';

/** A network namespace: its name as `ip netns` keeps it, or anything with that name (Namespace). */
export type From = string | { readonly name: string };
const netnsOf = (from: From): string => (typeof from === 'string' ? from : from.name);

export interface EchoOptions {
  /** ping -c */
  count: number;
  /** ping -i, in ms (default 200). */
  intervalMs?: number;
  /** ping -W, in ms (default 1000). */
  timeoutMs?: number;
  /** ping -s: data bytes after the ICMP header (default 56). */
  size?: number;
}

/** `ping -c count` from `from` to `target`: every echo ends as a reply or one failure with its reason. */
export function echoes(from: From, target: string, o: EchoOptions): Promise<ProbeResult> {
  return probe({ netns: netnsOf(from), target, count: o.count, intervalMs: o.intervalMs ?? 200, timeoutMs: o.timeoutMs ?? 1000, size: o.size });
}

/** The first failure's one line (e.g. "ICMP destination unreachable (net unreachable) from 198.18.0.11"), '' when none. */
export function firstFailure(r: ProbeResult): string {
  return (r.failures.find((f) => f.reason !== 'stopped') ?? r.failures[0])?.detail ?? '';
}

/** "3/3 answered" plus the first failure, for assertion messages. */
export function summary(r: ProbeResult): string {
  const why = firstFailure(r);
  return `${r.received}/${r.sent} answered${why ? `; first failure: ${why}` : ''}`;
}

export interface ContinuousEchoes {
  /** Ends the run (echoes still waiting end as 'stopped', like ping's last one on SIGINT); its result. */
  stop(): Promise<ProbeResult>;
}

/**
 * A continuous `ping -i intervalMs` for traffic during an outage or a restart: runs until stop(). A run
 * that cannot start rejects from stop(), never as an unhandled rejection before it.
 */
export function continuousEchoes(from: From, target: string, intervalMs: number, timeoutMs = 1000): ContinuousEchoes {
  const abort = new AbortController();
  const run = probe({ netns: netnsOf(from), target, count: 65535, intervalMs, timeoutMs, signal: abort.signal });
  run.catch(() => {}); // surfaced by stop()
  return {
    stop: async () => {
      abort.abort();
      return run;
    },
  };
}

/** When each answered echo's reply came back (ms since the epoch), in send order. */
export const replyTimes = (r: ProbeResult): number[] => r.replies.map((x) => r.startedAtMs + x.sentAtMs + x.rttUs / 1000);

/** What `ping` printed as "Destination Net Unreachable": the first failure of an echo to a vanished subnet. */
export const NET_UNREACHABLE = /^ICMP destination unreachable \(net unreachable\) from /;

/** Echoes every 200 ms until the first reply (true) or withinMs without one (false); errors do not end it. */
export async function waitForReply(from: From, target: string, withinMs: number): Promise<boolean> {
  const r = await probe({ netns: netnsOf(from), target, count: Math.max(1, Math.ceil(withinMs / 200)), intervalMs: 200, timeoutMs: 1000, stopAfterReplies: 1 });
  return r.received > 0;
}
