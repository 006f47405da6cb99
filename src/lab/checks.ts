// The lab's pod-to-pod checks: ICMP echoes from every pod to every other pod (IPv4, and IPv6 when the
// lab has it), sent by our own prober (src/probe/) from inside the pod's namespace, so the lab needs no
// `ping`. Pairs are checked at once, each within a bounded time, with one reason per failed pair.
import { probe, type EchoFailure, type ProbeResult } from '../probe/prober.js';
import type { LabNode } from './daemons.js';

export interface PairResult {
  from: string;
  to: string;
  family: 4 | 6;
  ok: boolean;
  detail: string;
}

/** How long a pair is tried, and when a pair that is refused counts as settled. */
export interface PairPatience {
  /** Give up on a pair that has not answered for this long (echoes go every 200 ms until then). */
  waitMs?: number;
  /**
   * Stop after this many echoes were refused, by an ICMP error or by the pod's own table (no route);
   * 0: only at waitMs. Once the daemons know their peers such an answer does not change within a
   * second, so `flannelctl lab` settles a refused pair after 5 (about 1 s) instead of trying on.
   * Silence is no answer: a pair that only times out is tried until waitMs.
   */
  settleAfterErrors?: number;
}

const INTERVAL_MS = 200;
const ECHO_TIMEOUT_MS = 1000;
/** Pairs checked at once: one prober thread each, mostly asleep; bounded for a lab of 200 nodes. */
const PAIRS_AT_ONCE = 32;
/** A lease event may still be on its way after a change: a single pair is tried this long. */
const PAIR_WAIT_MS = 5000;
/** What `flannelctl lab` allows per pair once the daemons reported every peer. */
export const SETTLED_PAIR: Required<PairPatience> = { waitMs: PAIR_WAIT_MS, settleAfterErrors: 5 };
/**
 * WireGuard: when two stock peers (kernel, wireguard-go) send their first initiations at once, each
 * rejects the response to its own and both try again only after REKEY_TIMEOUT (5 s, plus up to 1/3 s
 * of jitter). Our engine avoids that wait (native/wireguard/device_handshake.cc), a lab of stock peers
 * cannot, so a silent pair gets one more handshake attempt before it counts as failed.
 */
export const WIREGUARD_PAIR: Required<PairPatience> = { waitMs: PAIR_WAIT_MS + 6000, settleAfterErrors: 5 };

export const patienceFor = (backend: string): Required<PairPatience> => (backend === 'wireguard' ? WIREGUARD_PAIR : SETTLED_PAIR);

// The most telling failure first: the sender's own refusal, then an ICMP error (who said no and why),
// then silence.
const WEIGHT: Record<EchoFailure['reason'], number> = {
  'no-route': 0,
  'send-error': 0,
  unreachable: 1,
  'time-exceeded': 1,
  'packet-too-big': 1,
  'parameter-problem': 1,
  timeout: 2,
  stopped: 3,
};

/** The pair's outcome: ok with the mean RTT of its replies, or the one reason that explains the silence. */
export function pairOutcome(r: ProbeResult): { ok: boolean; detail: string } {
  if (r.replies.length > 0) {
    const meanUs = r.replies.reduce((s, x) => s + x.rttUs, 0) / r.replies.length;
    return { ok: true, detail: `${(meanUs / 1000).toFixed(3)} ms` };
  }
  const worst = [...r.failures].sort((x, y) => WEIGHT[x.reason] - WEIGHT[y.reason] || y.seq - x.seq)[0];
  const echoes = `${r.sent} echo${r.sent === 1 ? '' : 'es'}, no reply`;
  return { ok: false, detail: worst ? `${worst.reason}: ${worst.detail}; ${echoes}` : `no echo sent (${r.end})` };
}

/**
 * Echoes from a's pod to `target` every 200 ms until `count` replies came (the pair passes with at
 * least one), or for at most `waitMs` (default 5 s: a peer's lease event may still be on its way).
 */
export async function pingPair(a: LabNode, b: LabNode, family: 4 | 6, target: string | undefined, count = 2, patience: PairPatience = {}): Promise<PairResult> {
  const pair = { from: a.name, to: b.name, family };
  if (!target) return { ...pair, ok: false, detail: 'no address' };
  const waitMs = patience.waitMs ?? PAIR_WAIT_MS;
  try {
    const r = await probe({
      netns: a.pod.name,
      target,
      family,
      // The last echo leaves a timeout before waitMs, so the run is over by then.
      count: Math.max(count, Math.floor((waitMs - ECHO_TIMEOUT_MS) / INTERVAL_MS) + 1),
      intervalMs: INTERVAL_MS,
      timeoutMs: ECHO_TIMEOUT_MS,
      stopAfterReplies: count,
      stopAfterErrors: patience.settleAfterErrors ?? 0,
    });
    return { ...pair, ...pairOutcome(r) };
  } catch (e) {
    // The prober could not start (no such namespace, no privilege): that is the pair's reason.
    return { ...pair, ok: false, detail: (e as Error).message };
  }
}

/** Runs the tasks, at most `limit` at a time; results in the tasks' order. */
async function bounded<T>(tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const out = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return out;
}

type Pair = [LabNode, LabNode, 4 | 6, string | undefined];

function orderedPairs(nodes: readonly LabNode[], ipv6: boolean): Pair[] {
  const pairs: Pair[] = [];
  for (const a of nodes) {
    for (const b of nodes) {
      if (a === b) continue;
      pairs.push([a, b, 4, b.podIP]);
      if (ipv6) pairs.push([a, b, 6, b.podIPv6]);
    }
  }
  return pairs;
}

/**
 * Every ordered pair of pods, IPv4 and (with `ipv6`) IPv6, checked at once: a working lab answers in
 * about one echo interval, one where nothing answers fails within 5 s (a refused pair in about 1 s),
 * each pair with its reason.
 */
export function checkAllPairs(nodes: readonly LabNode[], ipv6: boolean, count = 2, patience: PairPatience = SETTLED_PAIR): Promise<PairResult[]> {
  return bounded(orderedPairs(nodes, ipv6).map(([a, b, family, target]) => () => pingPair(a, b, family, target, count, patience)), PAIRS_AT_ONCE);
}

/**
 * Waits until every pod reaches every other pod (IPv4). Another flanneld has no status socket, so the
 * only sign that it has learned its peers' leases is traffic; a stock flanneld can take a few seconds
 * after writing subnet.env, and a measurement started before that sees only losses.
 */
export async function waitForAllPaths(nodes: readonly LabNode[], timeoutMs: number, logOf: (n: LabNode) => string): Promise<void> {
  const results = await checkAllPairs(nodes, false, 1, { waitMs: timeoutMs, settleAfterErrors: 0 });
  const failed = results.find((r) => !r.ok);
  if (!failed) return;
  const b = nodes.find((n) => n.name === failed.to)!;
  throw new Error(`pod ${failed.from} -> ${failed.to} (${b.podIP}): no reply after ${timeoutMs / 1000}s (${failed.detail}); daemon log of ${b.name}:\n${logOf(b)}`);
}
