// The bench's RTT before and after it moved from `ping` to our prober, in the same labs: kernel vxlan
// and our udp (the bench's own targets), `ping -c 200 -i 0.01` and the prober's 200 echoes 10 ms apart,
// interleaved (which goes first alternates), a few rounds; p50 and p99 of every set and their medians.
// A developer's check that the bench's rtt_us keeps its meaning, so it needs root and `ping` (Debian
// package iputils-ping), which nothing else does.
//   sudo npm run bench:rtt-ab [-- ROUNDS]
import { execFileSync } from 'node:child_process';
import { kernelTarget, daemonTarget, type Target } from '../src/bench/targets.js';
import { median } from '../src/bench/measure.js';
import { probe } from '../src/probe/prober.js';
import { hasBinary } from '../src/util/system-packages.js';

const ECHOES = 200;
const rounds = Number(process.argv[2] ?? 6);

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const tools: Record<string, (t: Target) => Promise<number[]>> = {
  ping: async (t) => {
    const out = execFileSync('ip', ['netns', 'exec', t.client.name, 'ping', '-c', String(ECHOES), '-i', '0.01', '-W', '1', t.serverIP], { encoding: 'utf8' });
    return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000);
  },
  prober: async (t) => (await probe({ netns: t.client.name, target: t.serverIP, count: ECHOES, intervalMs: 10, timeoutMs: 1000 })).replies.map((r) => r.rttUs),
};

if (!hasBinary('ping')) {
  process.stderr.write('bench/rtt-ab: compares our prober with ping, which is not installed (Debian: apt-get install iputils-ping)\n');
  process.exit(1);
}
const rows: string[] = [];
for (const name of ['vxlan', 'udp'] as const) {
  const t = name === 'vxlan' ? kernelTarget('vxlan') : await daemonTarget('udp', {});
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
