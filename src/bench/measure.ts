// One target measured: RTT (rtt.ts), TCP with 1 and 4 streams and a small-packet UDP rate (iperf.ts)
// between the pods, the daemons' CPU and memory from /proc, the whole machine's CPU beyond its idle
// baseline, and the placement read back throughout (placement-verify.ts). Every test waits for a quiet
// machine first.
import { cpuSeconds, rssMiB } from './procstat.js';
import { idleBaseline, waitQuiet } from './machine-window.js';
import { iperf, type IperfRun } from './iperf.js';
import { measureRtt } from './rtt.js';
import { PlacementRecorder, type PlacementCheck } from './placement-verify.js';
import type { Target } from './targets.js';
import type { BenchOptions, Metric } from './types.js';
import type { Placement } from '../lab/placement.js';

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** The client acts for node 1 (index 0), the server for node 2. */
const CLIENT_NODE = 0;
const SERVER_NODE = 1;

/** Records a test's processes and, for TCP, its machine window in the placement check. */
function recordIperf(check: PlacementRecorder, run: IperfRun, tcp: boolean): void {
  check.threads(CLIENT_NODE, 'iperf3 client', run.client);
  check.threads(SERVER_NODE, 'iperf3 server', run.server);
  if (tcp) check.softnet(run.window.softnet);
}

export interface Measured {
  /** The placement read back; the caller fails the row when it is not ok. */
  placement: PlacementCheck;
  /** Busy CPUs (CPU-s per s) of the idle machine just before each TCP test. */
  idleBaselines: number[];
}

/** Measures one target; figures go to `add` as they are known. */
export async function measure(name: string, t: Target, o: BenchOptions, placement: Placement, add: (m: Metric, runs: number[]) => void): Promise<Measured> {
  const secs = o.quick ? 1 : (o.secondsPerTest ?? 5);
  const repeat = o.quick ? 1 : (o.repeat ?? 1);
  const log = o.log ?? (() => {});
  const check = new PlacementRecorder(placement, t.nodes, t.underlay);
  check.steering();
  check.daemons();
  // Warm-up: ARP/neighbour entries and peer tables in place before anything is timed.
  await measureRtt(t.client, t.serverIP, 3);
  // RTT before the throughput tests of each repetition, on an otherwise idle path: after the 64-byte
  // UDP flood the 8 MiB socket buffers of a userspace data plane still hold a backlog for a while,
  // which would be measured instead. One RTT sample set per repetition, like the TCP figures: a single
  // set of 200 pings on a shared 2-vCPU machine moved kernel vxlan's p50 between 9 and 34 us.
  // Before every test: the previous one's teardown (iperf3 exiting, sockets closing) settles first.
  const quietMs = o.quick ? 1000 : 5000;
  // The idle baseline for the whole-machine CPU column, read just before each TCP test.
  const baselineMs = o.quick ? 500 : 1000;
  const rttP50: number[] = [];
  const rttP99: number[] = [];
  const omit = secs >= 3 ? ['-O', '1'] : [];
  const pids = t.daemonPids();
  const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  let bytes = 0;
  let machineBusy = 0;
  let movedBytes = 0;
  const tcp1: number[] = [];
  const tcp4: number[] = [];
  const idleBaselines: number[] = [];
  const tcp = async (args: string[]): Promise<IperfRun> => {
    await waitQuiet(quietMs);
    const baseline = await idleBaseline(baselineMs);
    idleBaselines.push(Math.round(baseline * 1000) / 1000);
    const run = await iperf(t, [...args, ...omit], secs, baseline);
    recordIperf(check, run, true);
    bytes += run.bytes;
    movedBytes += run.movedBytes;
    machineBusy += run.window.busySeconds;
    return run;
  };
  for (let r = 0; r < repeat; r++) {
    await waitQuiet(quietMs);
    const rtt = await measureRtt(t.client, t.serverIP, o.quick ? 50 : 200);
    if (rtt.rtts.length === 0) throw new Error('prober: no replies');
    check.threads(CLIENT_NODE, 'prober', rtt.threads);
    rttP50.push(percentile(rtt.rtts, 50));
    rttP99.push(percentile(rtt.rtts, 99));
    tcp1.push((await tcp([])).bps / 1e9);
    tcp4.push((await tcp(['-P', '4'])).bps / 1e9);
  }
  add('rtt_us_p50', rttP50);
  add('rtt_us_p99', rttP99);
  log(`  ${name}: rtt p50 ${median(rttP50).toFixed(0)} us p99 ${median(rttP99).toFixed(0)} us`);
  const cpu1 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  add('tcp1_gbps', tcp1);
  add('tcp4_gbps', tcp4);
  log(`  ${name}: tcp1 ${median(tcp1).toFixed(2)} Gbit/s, tcp4 ${median(tcp4).toFixed(2)} Gbit/s`);
  if (pids.length) add('cpu_s_per_gb', [(cpu1 - cpu0) / (bytes / 1e9)]);
  add('machine_cpu_s_per_gb', [machineBusy / (movedBytes / 1e9)]);
  check.daemons();
  // Small-packet rate: 64-byte payloads at an unreachable target rate; what arrives is the figure.
  await waitQuiet(quietMs);
  const udp = await iperf(t, ['-u', '-l', '64', '-b', '0'], secs, 0);
  recordIperf(check, udp, false);
  add('udp_kpps', [(udp.pps ?? 0) / 1000]);
  log(`  ${name}: udp ${((udp.pps ?? 0) / 1000).toFixed(0)} kpps`);
  if (pids.length) add('rss_mib', [Math.max(...t.daemonPids().map(rssMiB))]);
  check.daemons();
  check.steering();
  if (t.rssWithPeers) add('rss_mib_1000peers', [await t.rssWithPeers()]);
  return { placement: check.finish(), idleBaselines };
}
