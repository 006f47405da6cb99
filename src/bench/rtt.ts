// The bench's round-trip time: our prober (src/probe/) sends an ICMP echo every 10 ms from a pod
// namespace, pinned to that pod's node's first CPU when the bench places nodes, and the RTT comes from
// kernel receive timestamps. Its thread lives in this process; it is read back by name while it runs,
// so the placement check sees where it really ran. `npm run bench:rtt-ab` compares it with ping.
import { readThreadAffinity, type ThreadAffinity } from '../lab/affinity.js';
import type { Namespace } from '../lab/netns.js';
import { probe } from '../probe/prober.js';
import { sleep } from '../util/sleep.js';

/** The prober thread's name (native/probe/prober.cc kThreadName). */
export const PROBER_THREAD_NAME = 'flannelts-probe';

export interface RttSamples {
  /** One round trip per reply, in microseconds. */
  rtts: number[];
  /** The prober's threads as read back while it ran (for the placement check). */
  threads: ThreadAffinity[];
}

/** Parses ping's "time=0.123 ms" lines into microseconds (the prober-vs-ping A/B, bench/rtt-ab.ts). */
export function parsePingTimes(out: string): number[] {
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000);
}

/** `count` echo requests from `from` to `to`, 10 ms apart; some loss still leaves usable samples. */
export async function measureRtt(from: Namespace, to: string, count: number): Promise<RttSamples> {
  const seen = new Map<number, ThreadAffinity>();
  const sample = (): void => {
    for (const t of readThreadAffinity(process.pid)) if (t.name === PROBER_THREAD_NAME) seen.set(t.tid, t);
  };
  let running = true;
  const watcher = (async () => {
    while (running) {
      sample();
      await sleep(50);
    }
  })();
  try {
    const r = await probe({ netns: from.name, target: to, count, intervalMs: 10, timeoutMs: 1000, ...(from.cpus?.length ? { cpu: from.cpus[0] } : {}) });
    return { rtts: r.replies.map((x) => x.rttUs), threads: [...seen.values()] };
  } finally {
    running = false;
    await watcher;
  }
}
