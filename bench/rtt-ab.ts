// The bench's RTT before and after it moved from `ping` to our prober, in the same labs: kernel vxlan
// and our udp (the bench's own targets), `ping -c 200 -i 0.01` and the prober's 200 echoes 10 ms apart,
// interleaved (which goes first alternates), a few rounds; p50 and p99 of every set and their medians.
// A developer's check that the bench's rtt_us keeps its meaning, so it needs root and `ping` (Debian
// package iputils-ping), which nothing else does.
//   sudo npm run bench:rtt-ab [-- ROUNDS]
import { kernelTarget, daemonTarget, type Target } from '../src/bench/targets.js';
import { median, percentile } from '../src/bench/measure.js';
import { measureRtt, parsePingTimes } from '../src/bench/rtt.js';
import { benchPlacement } from '../src/bench/bench.js';
import { hasBinary } from '../src/util/system-packages.js';

const ECHOES = 200;
const rounds = Number(process.argv[2] ?? 6);

const tools: Record<string, (t: Target) => Promise<number[]>> = {
  // ping runs under the pod's CPU set (Namespace.exec pins it), the prober's thread is pinned by measureRtt.
  ping: async (t) => parsePingTimes(t.client.exec('ping', ['-c', String(ECHOES), '-i', '0.01', '-W', '1', t.serverIP], { timeoutMs: ECHOES * 100 + 10_000 })),
  prober: async (t) => (await measureRtt(t.client, t.serverIP, ECHOES)).rtts,
};

if (!hasBinary('ping')) {
  process.stderr.write('bench/rtt-ab: compares our prober with ping, which is not installed (Debian: apt-get install iputils-ping)\n');
  process.exit(1);
}
// The bench's own placement (per-node where the machine allows), so both tools run where the bench's RTT runs.
const placement = benchPlacement(undefined);
if (typeof placement === 'string') throw new Error(placement);
const rows: string[] = [];
for (const name of ['vxlan', 'udp'] as const) {
  const t = name === 'vxlan' ? kernelTarget('vxlan', placement) : await daemonTarget('udp', { placement }, placement);
  try {
    for (const tool of Object.values(tools)) await tool(t); // warm-up: neighbours and peer tables in place
    const p50: Record<string, number[]> = { ping: [], prober: [] };
    const p99: Record<string, number[]> = { ping: [], prober: [] };
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? ['prober', 'ping'] : ['ping', 'prober'];
      for (const tool of order) {
        const rtts = await tools[tool]!(t);
        p50[tool]!.push(percentile(rtts, 50));
        p99[tool]!.push(percentile(rtts, 99));
      }
    }
    for (const tool of ['ping', 'prober']) {
      const f = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(' ');
      rows.push(`| ${name} | ${tool} | ${median(p50[tool]!).toFixed(0)} | ${median(p99[tool]!).toFixed(0)} | ${f(p50[tool]!)} | ${f(p99[tool]!)} |`);
    }
  } finally {
    await t.teardown();
  }
}
process.stdout.write(
  `${ECHOES} echoes 10 ms apart per set, ${rounds} rounds interleaved; RTT in microseconds\n\n` +
    '| target | tool | p50 (median of rounds) | p99 (median of rounds) | p50 per round | p99 per round |\n|---|---|---|---|---|---|\n' +
    rows.join('\n') +
    '\n',
);
