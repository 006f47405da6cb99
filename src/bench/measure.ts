// One target measured: RTT with ping, TCP (1 and 4 streams) and a small-packet UDP rate with iperf3,
// run inside the pod namespaces, plus the daemons' CPU and memory from /proc. Every test waits for a
// quiet machine first.
import { cpuSeconds, machineJiffies, rssMiB } from './procstat.js';
import type { Target } from './targets.js';
import type { BenchOptions, Metric } from './types.js';
import { sleep } from '../util/sleep.js';
import { probe } from '../probe/prober.js';

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Iperf {
  bps: number;
  bytes: number;
  pps?: number;
}

function iperfClient(t: Target, args: string[], seconds: number): Iperf {
  const out = t.client.exec('iperf3', ['-c', t.serverIP, '-t', String(seconds), '-J', ...args], { timeoutMs: (seconds + 20) * 1000 });
  const j = JSON.parse(out) as {
    error?: string;
    end?: {
      sum_received?: { bits_per_second: number; bytes: number };
      sum?: { packets?: number; lost_packets?: number; seconds?: number; bits_per_second: number; bytes: number };
    };
  };
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  const end = j.end ?? {};
  if (args.includes('-u')) {
    const s = end.sum;
    if (!s || s.packets === undefined || !s.seconds) throw new Error('iperf3 -u: no end.sum in the JSON');
    // packets counts what the client sent; the server reports what it lost of them.
    const received = s.packets - (s.lost_packets ?? 0);
    return { bps: s.bits_per_second, bytes: s.bytes, pps: received / s.seconds };
  }
  const r = end.sum_received;
  if (!r) throw new Error('iperf3: no end.sum_received in the JSON');
  return { bps: r.bits_per_second, bytes: r.bytes };
}

/**
 * One iperf3 test against a fresh one-shot server (`-s -1`): a server that a 64-byte UDP flood
 * wedged cannot spoil the next test. One retry, since other load on the machine can time a test out.
 */
async function iperf(t: Target, args: string[], seconds: number): Promise<Iperf> {
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
      return iperfClient(t, args, seconds);
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

/**
 * `count` ICMP echoes from the client pod to the server, 10 ms apart, with our prober (ping -i 0.01's
 * schedule and 64-byte size; RTT from the kernel's receive timestamp, as ping takes it); microseconds,
 * one per reply: some loss still leaves usable samples.
 */
async function pingRtts(t: Target, count: number): Promise<number[]> {
  const r = await probe({ netns: t.client.name, target: t.serverIP, count, intervalMs: 10, timeoutMs: 1000 });
  return r.replies.map((x) => x.rttUs);
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/**
 * Waits (at most maxMs) until the machine is quiet: at least 90 % idle over 250 ms. The previous
 * target's teardown leaves the kernel deleting its namespaces and devices in a worker for a second or
 * two, a daemon that just started is still busy, and an iperf3 run leaves sockets closing; a test
 * started then measures some of that too.
 */
async function waitQuiet(maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    const a = machineJiffies();
    await sleep(250);
    const b = machineJiffies();
    if (b.total > a.total && (b.idle - a.idle) / (b.total - a.total) >= 0.9) return;
  }
}

export async function measure(name: string, t: Target, o: BenchOptions, add: (m: Metric, runs: number[]) => void): Promise<void> {
  const secs = o.quick ? 1 : (o.secondsPerTest ?? 5);
  const repeat = o.quick ? 1 : (o.repeat ?? 1);
  const log = o.log ?? (() => {});
  // Warm-up: ARP/neighbour entries and peer tables in place before anything is timed.
  await pingRtts(t, 3);
  // RTT before the throughput tests of each repetition, on an otherwise idle path: after the 64-byte
  // UDP flood the 8 MiB socket buffers of a userspace data plane still hold a backlog for a while,
  // which would be measured instead. One RTT sample set per repetition, like the TCP figures: a single
  // set of 200 pings on a shared 2-vCPU machine moved kernel vxlan's p50 between 9 and 34 us.
  // Before every test: the previous one's teardown (iperf3 exiting, sockets closing) settles first.
  const quietMs = o.quick ? 1000 : 5000;
  const rttP50: number[] = [];
  const rttP99: number[] = [];
  const omit = secs >= 3 ? ['-O', '1'] : [];
  const pids = t.daemonPids();
  const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  let bytes = 0;
  const tcp1: number[] = [];
  const tcp4: number[] = [];
  for (let r = 0; r < repeat; r++) {
    await waitQuiet(quietMs);
    const rtts = await pingRtts(t, o.quick ? 50 : 200);
    if (rtts.length === 0) throw new Error('ping: no replies');
    rttP50.push(percentile(rtts, 50));
    rttP99.push(percentile(rtts, 99));
    await waitQuiet(quietMs);
    const one = await iperf(t, omit, secs);
    tcp1.push(one.bps / 1e9);
    bytes += one.bytes;
    await waitQuiet(quietMs);
    const four = await iperf(t, ['-P', '4', ...omit], secs);
    tcp4.push(four.bps / 1e9);
    bytes += four.bytes;
  }
  add('rtt_us_p50', rttP50);
  add('rtt_us_p99', rttP99);
  log(`  ${name}: rtt p50 ${median(rttP50).toFixed(0)} us p99 ${median(rttP99).toFixed(0)} us`);
  const cpu1 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  add('tcp1_gbps', tcp1);
  add('tcp4_gbps', tcp4);
  log(`  ${name}: tcp1 ${median(tcp1).toFixed(2)} Gbit/s, tcp4 ${median(tcp4).toFixed(2)} Gbit/s`);
  if (pids.length) add('cpu_s_per_gb', [(cpu1 - cpu0) / (bytes / 1e9)]);
  // Small-packet rate: 64-byte payloads at an unreachable target rate; what arrives is the figure.
  await waitQuiet(quietMs);
  const udp = await iperf(t, ['-u', '-l', '64', '-b', '0'], secs);
  add('udp_kpps', [(udp.pps ?? 0) / 1000]);
  log(`  ${name}: udp ${((udp.pps ?? 0) / 1000).toFixed(0)} kpps`);
  if (pids.length) add('rss_mib', [Math.max(...t.daemonPids().map(rssMiB))]);
  if (t.rssWithPeers) add('rss_mib_1000peers', [await t.rssWithPeers()]);
}
