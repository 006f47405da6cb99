// `flannelctl bench --quick` end to end, so the harness cannot rot: every target builds, every metric
// gets a number, the steady-lease step keeps the daemons exact, the JSON/markdown/SVG land in --out,
// and nothing of the run is left behind. Figures are not asserted (timed results on a shared machine
// are not a test); only their shape is.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { METRICS, type BenchReport } from '../../src/bench/types.js';
import { FLANNELD_NODE_FLAGS } from '../../src/config/node-flags.js';
import { run } from '../../src/lab/netns.js';
import { hasBinary } from '../../src/util/system-packages.js';
import { allowedCpus } from '../../src/lab/placement.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';

const here = dirname(fileURLToPath(import.meta.url));
const flannelctl = join(here, '..', '..', 'src', 'cli', 'flannelctl.js');
const flanneld = join(here, '..', '..', 'src', 'cli', 'flanneld.js');
/**
 * The run's placement as the JSON and the markdown name it, and each target's read-back: per-node
 * (the default wherever there is a CPU per node) verified for every row, with each node's CPUs taking
 * RPS interrupts during the TCP tests; otherwise the fallback to shared, said so.
 */
function assertPlacement(report: BenchReport, md: string, daemonRows: readonly string[]): void {
  const p = report.placement;
  if (allowedCpus().length >= 2) {
    assert.equal(p.mode, 'per-node', JSON.stringify(p));
    const each = Math.floor(p.allowed.length / 2);
    assert.deepEqual(p.nodes, [p.allowed.slice(0, each), p.allowed.slice(each, 2 * each)]);
    assert.match(md, /^placement: per-node: n1 CPU [\d,-]+, n2 CPU [\d,-]+ \(/m);
  } else {
    assert.equal(p.mode, 'shared');
    assert.match(p.fallback ?? '', /fell back to shared/);
    assert.match(md, /^placement: shared: .*fell back to shared\)$/m);
  }
  for (const b of report.backends) {
    const c = report.placementChecks[b];
    assert.ok(c, `${b}: no placement check (${report.notes[b]})`);
    assert.equal(c.ok, true, `${b}: ${c.problems.join('; ')}`);
    assert.equal(c.mode, p.mode);
    const whats = new Set(c.processes.map((x) => x.what));
    for (const w of ['prober', 'iperf3 client', 'iperf3 server', ...(daemonRows.includes(b) ? ['daemon'] : [])]) assert.ok(whats.has(w), `${b}: ${w} read back: ${JSON.stringify(c.processes)}`);
    assert.ok(c.threads >= c.processes.length && c.queues.length > 0, JSON.stringify(c));
    if (p.mode === 'per-node') {
      assert.ok(c.queues.some((q) => q.device === 'eth0' && q.cpus !== ''), `${b}: steered queues ${JSON.stringify(c.queues)}`);
      for (const node of ['n1', 'n2']) assert.ok(c.softnet.some((s) => s.node === node && s.receivedRps > 0), `${b}: ${node} RPS interrupts ${JSON.stringify(c.softnet)}`);
    }
    assert.match(md, new RegExp(`^- ${b}: verified: \\d+ threads \\(`, 'm'));
    // The whole-machine column: every row has it (kernel datapaths too), baselines read before both TCP tests.
    const m = report.results.find((x) => x.backend === b && x.metric === 'machine_cpu_s_per_gb');
    assert.ok(m && typeof m.value === 'number' && m.value >= 0, `${b} machine_cpu_s_per_gb: ${JSON.stringify(m)}`);
    assert.equal(report.idleBaselines[b]?.length, 2, JSON.stringify(report.idleBaselines));
  }
}

const netns = (): string[] => run('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);

describe('flannelctl bench --quick', suiteNeeds(rootAndNetns(), binary('iperf3')), () => {
  test('measures every backend and writes markdown, JSON and SVG', { timeout: 540_000 }, (t) => {
    if (!need(t, rootAndNetns(), binary('iperf3'))) return;
    const out = mkdtempSync(join(tmpdir(), 'flannelts-bench-'));
    try {
      const r = spawnSync(process.execPath, [flannelctl, 'bench', '--quick', '--out', out], { encoding: 'utf8', timeout: 530_000 });
      t.diagnostic(r.stdout.split('\n').filter((l) => l.startsWith('|')).join('\n'));
      assert.equal(r.status, 0, `bench exit ${r.status}: ${r.stderr}\n${r.stdout}`);
      const files = readdirSync(out);
      for (const ext of ['md', 'json', 'svg']) assert.ok(files.some((f) => f.startsWith('bench-') && f.endsWith(`.${ext}`)), `a .${ext} file in ${files.join(', ')}`);
      const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as BenchReport;
      // Debian's wireguard-go is measured where it (and wg) is installed.
      const wgGo = hasBinary('wireguard-go') && hasBinary('wg') ? ['wireguard-go'] : [];
      assert.deepEqual(report.backends, ['raw', 'vxlan', 'vxlan-userspace', 'host-gw', 'udp', 'udp-nooffload', 'wireguard', ...wgGo]);
      assert.equal(report.quick, true);
      assert.ok(report.machine.kernel && report.machine.cpu && report.machine.cores > 0 && report.machine.node.startsWith('v'));
      // The wake-up probe ran at both ends of the run (what a userspace plane's hand-offs cost here).
      for (const w of [report.machine.wakeStart, report.machine.wakeEnd]) {
        assert.ok(w && !w.error && w.sameCpuUs !== null && w.sameCpuUs > 0, JSON.stringify(w));
        if (report.machine.cores >= 2) assert.ok(w.crossCpuUs !== null && w.crossCpuUs > 0, JSON.stringify(w));
      }
      for (const b of report.backends) {
        for (const m of ['tcp1_gbps', 'tcp4_gbps', 'udp_kpps', 'rtt_us_p50', 'rtt_us_p99'] as const) {
          const res = report.results.find((x) => x.backend === b && x.metric === m);
          assert.ok(res && typeof res.value === 'number' && res.value > 0 && res.runs.length >= 1, `${b} ${m}: ${JSON.stringify(res)} (${report.notes[b]})`);
        }
      }
      for (const [b, m] of [
        ['udp', 'cpu_s_per_gb'], ['udp', 'rss_mib'], ['udp', 'rss_mib_1000peers'],
        ['udp-nooffload', 'cpu_s_per_gb'], ['udp-nooffload', 'rss_mib'],
        ['vxlan-userspace', 'cpu_s_per_gb'], ['vxlan-userspace', 'rss_mib'],
        ['wireguard', 'cpu_s_per_gb'], ['wireguard', 'rss_mib'],
        ...wgGo.flatMap((b) => [[b, 'cpu_s_per_gb'], [b, 'rss_mib']] as const),
      ] as const) {
        const res = report.results.find((x) => x.backend === b && x.metric === m);
        assert.ok(res && typeof res.value === 'number' && res.value > 0, `${b} ${m}: ${JSON.stringify(res)}`);
      }
      for (const res of report.results) assert.ok((METRICS as readonly string[]).includes(res.metric));
      const md = readFileSync(join(out, 'latest.md'), 'utf8');
      assert.match(md, /\| udp +\| [\d.]+ \([\d.]+x\)/, 'udp figures carry a ratio to vxlan');
      assert.match(md, /^thread wake-up round trip: [\d.]+ us on one CPU, ([\d.]+ us|n\/a) across two at start; .* at end$/m);
      assert.match(md, /\| vxlan-userspace +\| [\d.]+ \([\d.]+x\)/, 'userspace VTEP figures next to kernel vxlan, with ratios');
      assert.match(readFileSync(join(out, 'latest.svg'), 'utf8'), /^<svg [^>]*>[\s\S]*<\/svg>\n$/);
      assertPlacement(report, md, ['vxlan-userspace', 'udp', 'udp-nooffload', 'wireguard', ...wgGo]);
      // The steady-lease step: ~1,000 leases under 100 events/s; both daemons end exactly at the store
      // (no event lost) and the RSS series is there. Memory is reported, not judged.
      const st = report.steadyLeases;
      assert.ok(st, `steady-lease step ran: ${report.notes['steady-leases'] ?? ''}`);
      t.diagnostic(`steady leases: ${st.events.updated + st.events.deleted + st.events.readded} events; RSS ${JSON.stringify(st.rss)}`);
      assert.equal(st.converged, true, st.detail.join('; '));
      assert.equal(st.leases, 1000);
      assert.ok(st.storeLeases >= 990 + 2 && st.storeLeases <= 1000 + 2, `lease count held steady: ${st.storeLeases}`);
      assert.equal(st.events.updated + st.events.deleted + st.events.readded, st.seconds * st.rate);
      assert.ok(st.events.updated > 0 && st.events.deleted > 0 && st.events.readded > 0, JSON.stringify(st.events));
      assert.ok(st.samples.length >= 5 && st.samples.every((x) => x.rssMiB.length === 2 && x.rssMiB.every((m) => m > 0)), JSON.stringify(st.samples));
      assert.deepEqual(st.rss.map((x) => x.node), ['n1', 'n2']);
      for (const x of st.rss) assert.ok(x.min <= x.start && x.min <= x.end && x.max >= x.start && x.max >= x.end, JSON.stringify(x));
      assert.match(md, /steady leases: 1000 fake peer leases[\s\S]*\| n1 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|[\s\S]*RSS MiB series/);
      // Other suites may run labs at the same time: look only for the prefixes this run reports.
      assert.equal(report.prefixes.length, report.backends.length);
      const ours = [...report.prefixes, st.prefix];
      assert.deepEqual(netns().filter((n) => ours.some((p) => n.startsWith(p + '-'))), [], 'no namespace left behind');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  // `--flanneld PATH` as a user runs it against stock flannel: a foreign binary gets only flanneld's
  // own flags, an etcd store inside the lab and no status socket, so the bench can learn that its
  // paths work only from traffic. Our flanneld behind a shell script stands in for stock flanneld.
  test('measures another flanneld binary given with --flanneld', { timeout: 180_000 }, (t) => {
    if (!need(t, rootAndNetns(), binary('iperf3'), binary('etcd'))) return;
    const out = mkdtempSync(join(tmpdir(), 'flannelts-bench-'));
    try {
      const wrapper = join(out, 'stock-flanneld');
      // Both nodes share this host's /run: each daemon gets a status socket next to its subnet.env,
      // as the lab gives our own flanneld (the default path would be bound by both).
      const script = [
        '#!/bin/sh',
        'for a; do case "$a" in -subnet-file=*) dir=$(dirname "${a#-subnet-file=}") ;; esac; done',
        `exec ${[process.execPath, ...FLANNELD_NODE_FLAGS, flanneld].join(' ')} "$@" "-status-socket=$dir/flannelts.sock"`,
      ];
      writeFileSync(wrapper, script.join('\n') + '\n');
      chmodSync(wrapper, 0o755);
      const r = spawnSync(process.execPath, [flannelctl, 'bench', '--quick', '--only', 'flanneld-udp', '--flanneld', wrapper, '--out', out], { encoding: 'utf8', timeout: 170_000 });
      t.diagnostic(r.stdout.split('\n').filter((l) => l.startsWith('|')).join('\n'));
      assert.equal(r.status, 0, `bench exit ${r.status}: ${r.stderr}\n${r.stdout}`);
      const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as BenchReport;
      assert.deepEqual(report.backends, ['flanneld-udp']);
      assert.match(report.notes['flanneld-udp'] ?? '', /stock-flanneld with the same net-conf, etcd store$/);
      for (const m of ['tcp1_gbps', 'tcp4_gbps', 'udp_kpps', 'rtt_us_p50', 'rtt_us_p99', 'cpu_s_per_gb', 'rss_mib'] as const) {
        const res = report.results.find((x) => x.backend === 'flanneld-udp' && x.metric === m);
        assert.ok(res && typeof res.value === 'number' && res.value > 0, `flanneld-udp ${m}: ${JSON.stringify(res)} (${report.notes['flanneld-udp']})`);
      }
      // Another binary is placed like ours: its threads (behind a shell script that execs) on its node's CPU.
      assertPlacement(report, readFileSync(join(out, 'latest.md'), 'utf8'), ['flanneld-udp']);
      assert.deepEqual(netns().filter((n) => report.prefixes.some((p) => n.startsWith(p + '-'))), [], 'no namespace left behind');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
