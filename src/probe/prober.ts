// ICMP echo from inside a network namespace, without an external `ping`: the lab's pod-to-pod
// check, the bench's RTT and the tests' reachability all use it. The work runs on a native thread
// (native/probe/) that enters the namespace; this module validates nothing itself (the native
// constructor does, with one-line errors naming the field) and turns the raw result into reasons.
import { addonFunctions } from '../native/addon.js';
import { describeFailure, type FailureReason, type RawFailure } from './failure.js';

export type { FailureReason } from './failure.js';

export interface ProbeOptions {
  /** Where to send from: a name as `ip netns` keeps it, or a path (/var/run/netns/NAME, /proc/PID/ns/net). */
  netns: string;
  /** One host's IPv4 or IPv6 address. */
  target: string;
  /** Checked against target when given. */
  family?: 4 | 6;
  /** Echoes to send, 1..65535. */
  count: number;
  /** Between two sends (the schedule is fixed: echo n leaves at (n-1) x intervalMs). */
  intervalMs: number;
  /** How long each echo waits for its reply. */
  timeoutMs: number;
  /** Data bytes after the 8-byte ICMP header, 8..1472 (ping -s); default 56, a 64-byte message like ping's. */
  size?: number;
  /** Pin the prober thread to this CPU (benchmarks place each node's pod work on its own CPU). */
  cpu?: number;
  /** End the run once this many replies arrived (1 for a reachability check). */
  stopAfterReplies?: number;
  /** End the run once this many echoes failed (1 to fail fast). */
  stopAfterFailures?: number;
  /**
   * End the run once this many echoes were answered with an ICMP error or refused by sendto (no route):
   * answers that say the path is not there, unlike silence (timeouts do not count).
   */
  stopAfterErrors?: number;
  /** Ends the run early; the promise then resolves with what was measured, the rest 'stopped'. */
  signal?: AbortSignal;
}

export interface EchoReply {
  seq: number;
  /** Kernel receive timestamp minus the clock read right before sendto, in microseconds. */
  rttUs: number;
  /** When the echo left, since the run's first send (for timelines of an outage). */
  sentAtMs: number;
}

export interface EchoFailure {
  seq: number;
  reason: FailureReason;
  /** One line, e.g. 'ICMP destination unreachable (host unreachable) from 198.18.0.1'. */
  detail: string;
  sentAtMs: number;
  /** Who sent the ICMP error. */
  from?: string;
  /** sendto's errno name for no-route / send-error / a local unreachable route. */
  errno?: string;
}

export interface ProbeResult {
  target: string;
  family: 4 | 6;
  /** Echoes attempted; sent = replies.length + failures.length. */
  sent: number;
  /** Wall-clock time of the first send (ms since the epoch): an echo's reply came at startedAtMs + sentAtMs + rttUs / 1000. */
  startedAtMs: number;
  received: number;
  /** By seq (1-based, as ping numbers them). */
  replies: EchoReply[];
  /** By seq; one reason each. */
  failures: EchoFailure[];
  /** Further replies to an echo already answered. */
  duplicates: number;
  /** Replies that came after their echo's timeout (the echo counts as a timeout). */
  late: number;
  /** Why the run ended: every echo ended, a stopAfter* count was reached, or it was aborted. */
  end: 'done' | 'replies' | 'failures' | 'errors' | 'aborted';
}

interface RawResult {
  sent: number;
  startedAtMs: number;
  end: ProbeResult['end'];
  duplicates: number;
  late: number;
  replies: Array<{ seq: number; rttNs: number; sentAtNs: number }>;
  failures: RawFailure[];
}

interface NativeProber {
  start(): Promise<RawResult>;
  abort(): void;
}

const proberClass = (): new (o: ProbeOptions) => NativeProber =>
  addonFunctions<{ EchoProber: new (o: ProbeOptions) => NativeProber }>(['EchoProber']).EchoProber;

/** Sends echoes from inside o.netns to o.target; rejects only when the options are bad or the run cannot start. */
export async function probe(o: ProbeOptions): Promise<ProbeResult> {
  // The native constructor checks every field (and ignores signal), null included.
  const prober = new (proberClass())(o);
  const signal = o.signal;
  const onAbort = (): void => prober.abort();
  if (signal?.aborted) prober.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  let raw: RawResult;
  try {
    raw = await prober.start();
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  const family: 4 | 6 = o.target.includes(':') ? 6 : 4;
  return {
    target: o.target,
    family,
    sent: raw.sent,
    startedAtMs: raw.startedAtMs,
    received: raw.replies.length,
    replies: raw.replies.map((r) => ({ seq: r.seq, rttUs: r.rttNs / 1000, sentAtMs: r.sentAtNs / 1e6 })),
    failures: raw.failures.map((f) => ({
      seq: f.seq,
      ...describeFailure(f, family, o.target, o.timeoutMs),
      sentAtMs: f.sentAtNs / 1e6,
      ...(f.from !== undefined ? { from: f.from } : {}),
      ...(f.errno !== undefined ? { errno: f.errno } : {}),
    })),
    duplicates: raw.duplicates,
    late: raw.late,
    end: raw.end,
  };
}

export type Reachability = { ok: true; rttUs: number } | { ok: false; reason: FailureReason; detail: string };

/**
 * Whether target answers from netns: the first answer decides, so a working pair takes one round
 * trip and a pair answered by an ICMP error or refused by the local table fails as fast; echoes go
 * every intervalMs (a lost one is covered by the next) until one of them ends.
 */
export async function reachable(
  o: Pick<ProbeOptions, 'netns' | 'target' | 'family' | 'cpu' | 'signal'> & { attempts?: number; intervalMs?: number; timeoutMs?: number },
): Promise<Reachability> {
  const { attempts = 3, intervalMs = 200, timeoutMs = 1000, ...where } = o;
  const r = await probe({ ...where, count: attempts, intervalMs, timeoutMs, stopAfterReplies: 1, stopAfterFailures: 1 });
  const reply = r.replies[0];
  if (reply) return { ok: true, rttUs: reply.rttUs };
  const first = r.failures.find((f) => f.reason !== 'stopped') ?? r.failures[0];
  return first ? { ok: false, reason: first.reason, detail: first.detail } : { ok: false, reason: 'stopped', detail: 'aborted before the first echo' };
}
