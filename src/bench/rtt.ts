// The bench's round-trip time, behind one function so the prober can take ping's place: `ping` every
// 10 ms from a pod namespace (so pinned with that pod's node), its thread's affinity read while it runs.
import type { ThreadAffinity } from '../lab/affinity.js';
import type { Namespace } from '../lab/netns.js';
import { runWatched } from '../lab/watched-run.js';

export interface RttSamples {
  /** One round trip per reply, in microseconds. */
  rtts: number[];
  /** The prober's threads as read back while it ran (for the placement check). */
  threads: ThreadAffinity[];
}

/** Parses ping's "time=0.123 ms" lines into microseconds. */
export function parsePingTimes(out: string): number[] {
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000);
}

/** `count` echo requests from `from` to `to`, 10 ms apart; some loss still leaves usable samples. */
export async function measureRtt(from: Namespace, to: string, count: number): Promise<RttSamples> {
  const run = await runWatched(from, 'ping', ['-c', String(count), '-i', '0.01', '-W', '1', to], { timeoutMs: count * 100 + 10_000 });
  return { rtts: parsePingTimes(run.stdout), threads: run.threads };
}
