// The lab's pod-to-pod checks: an ICMP echo from every pod to every other pod (IPv4, and IPv6 when the
// lab has it), with one reason per failed pair.
import { sleep } from '../util/sleep.js';
import type { LabNode } from './daemons.js';

export interface PairResult {
  from: string;
  to: string;
  family: 4 | 6;
  ok: boolean;
  detail: string;
}

/** Pings `target` from a's pod; retries briefly, since a peer's lease event may still be on its way. */
export async function pingPair(a: LabNode, b: LabNode, family: 4 | 6, target: string | undefined, count = 2): Promise<PairResult> {
  if (!target) return { from: a.name, to: b.name, family, ok: false, detail: 'no address' };
  let detail = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const out = a.pod.exec('ping', [`-${family}`, '-c', String(count), '-i', '0.2', '-W', '1', target], { timeoutMs: 10_000 });
      const rtt = /= [\d.]+\/([\d.]+)\//.exec(out);
      return { from: a.name, to: b.name, family, ok: true, detail: rtt ? `${rtt[1]} ms` : 'ok' };
    } catch (e) {
      detail = (e as Error).message.split('\n').find((l) => /unreachable|loss|Unreachable/.test(l)) ?? 'failed';
      await sleep(300);
    }
  }
  return { from: a.name, to: b.name, family, ok: false, detail };
}

/** Every ordered pair of pods, IPv4 and (with `ipv6`) IPv6. */
export async function checkAllPairs(nodes: readonly LabNode[], ipv6: boolean, count = 2): Promise<PairResult[]> {
  const results: PairResult[] = [];
  for (const a of nodes) {
    for (const b of nodes) {
      if (a === b) continue;
      const targets: Array<[4 | 6, string | undefined]> = [[4, b.podIP]];
      if (ipv6) targets.push([6, b.podIPv6]);
      for (const [family, target] of targets) results.push(await pingPair(a, b, family, target, count));
    }
  }
  return results;
}

/**
 * Waits until every pod reaches every other pod (IPv4). Another flanneld has no status socket, so the
 * only sign that it has learned its peers' leases is traffic; a stock flanneld can take a few seconds
 * after writing subnet.env, and a measurement started before that sees only losses.
 */
export async function waitForAllPaths(nodes: readonly LabNode[], timeoutMs: number, logOf: (n: LabNode) => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const a of nodes) {
    for (const b of nodes) {
      if (a === b) continue;
      // pingPair() itself retries a few times; keep at it until the deadline.
      while (!(await pingPair(a, b, 4, b.podIP, 1)).ok) {
        if (Date.now() > deadline) throw new Error(`pod ${a.name} -> ${b.name} (${b.podIP}): no reply after ${timeoutMs / 1000}s; daemon log of ${b.name}:\n${logOf(b)}`);
      }
    }
  }
}
