// One iperf3 test between the target's pods: a one-shot server, the client run without blocking so its
// threads' affinity can be read while it runs, the machine's CPU and softnet counters around the client.
import { readThreadAffinity, type ThreadAffinity } from '../lab/affinity.js';
import { runWatched } from '../lab/watched-run.js';
import { snapshot, windowSince, type MachineWindow } from './machine-window.js';
import type { Target } from './targets.js';
import { sleep } from '../util/sleep.js';

export interface IperfFigures {
  bps: number;
  /** Bytes received in the measured (not omitted) intervals. */
  bytes: number;
  /** Bytes moved while the client ran, the omitted warm-up (-O) included: what its CPU time paid for. */
  movedBytes: number;
  /** UDP: datagrams received per second. */
  pps?: number;
}

export interface IperfRun extends IperfFigures {
  window: MachineWindow;
  client: ThreadAffinity[];
  server: ThreadAffinity[];
}

interface IperfJson {
  error?: string;
  intervals?: Array<{ sum?: { bytes?: number; omitted?: boolean } }>;
  end?: {
    sum_received?: { bits_per_second: number; bytes: number };
    sum?: { packets?: number; lost_packets?: number; seconds?: number; bits_per_second: number; bytes: number };
  };
}

/** The figures of an `iperf3 -c ... -J` output (TCP, or UDP with `udp`). */
export function parseIperfJson(out: string, udp: boolean): IperfFigures {
  let j: IperfJson;
  try {
    j = JSON.parse(out) as IperfJson;
  } catch {
    throw new Error(`iperf3: output is not JSON: ${out.slice(0, 120)}`);
  }
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  const end = j.end ?? {};
  if (udp) {
    const s = end.sum;
    if (!s || s.packets === undefined || !s.seconds) throw new Error('iperf3 -u: no end.sum in the JSON');
    // packets counts what the client sent; the server reports what it lost of them.
    const received = s.packets - (s.lost_packets ?? 0);
    return { bps: s.bits_per_second, bytes: s.bytes, movedBytes: s.bytes, pps: received / s.seconds };
  }
  const r = end.sum_received;
  if (!r) throw new Error('iperf3: no end.sum_received in the JSON');
  const omitted = (j.intervals ?? []).reduce((a, i) => a + (i.sum?.omitted ? (i.sum.bytes ?? 0) : 0), 0);
  return { bps: r.bits_per_second, bytes: r.bytes, movedBytes: r.bytes + omitted };
}

/**
 * One iperf3 test against a fresh one-shot server (`-s -1`): a server that a 64-byte UDP flood
 * wedged cannot spoil the next test. One retry, since other load on the machine can time a test out.
 * `baseline`: the machine's idle busy CPU-s per second, subtracted in the window.
 */
export async function iperf(t: Target, args: string[], seconds: number, baseline: number): Promise<IperfRun> {
  let last: Error | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    const server = t.server.spawn('iperf3', ['-s', '-1', '-B', t.serverIP], { stdio: 'ignore' });
    try {
      let listening = false;
      for (let i = 0; i < 50 && !listening; i++) {
        listening = t.server.exec('ss', ['-Hltn', 'sport = :5201']).includes('5201');
        if (!listening) await sleep(100);
      }
      if (!listening) throw new Error('iperf3 server did not start');
      const serverThreads = server.pid === undefined ? [] : readThreadAffinity(server.pid);
      const before = snapshot();
      const run = await runWatched(t.client, 'iperf3', ['-c', t.serverIP, '-t', String(seconds), '-J', ...args], { timeoutMs: (seconds + 20) * 1000 });
      const window = windowSince(before, baseline);
      if (run.code !== 0 && !run.stdout.trim().startsWith('{')) throw new Error(`iperf3 exit ${run.code}: ${run.stderr.trim().split('\n')[0] ?? ''}`);
      return { ...parseIperfJson(run.stdout, args.includes('-u')), window, client: run.threads, server: serverThreads };
    } catch (e) {
      last = e as Error;
    } finally {
      if (server.exitCode === null && server.signalCode === null) {
        server.kill('SIGTERM');
        await new Promise((r) => server.once('exit', r));
      }
    }
  }
  throw last ?? new Error('iperf3 failed');
}
