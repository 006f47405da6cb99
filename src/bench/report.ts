// Output of `flannelctl bench`: the markdown table (ratios to kernel vxlan next to each figure), the
// JSON report as is, and a hand-written SVG bar chart (no dependency), saved side by side.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatSteadyLeases } from './steady-leases.js';
import { LOWER_IS_BETTER, METRICS, STEADY_LEASES, type BenchReport, type Metric } from './types.js';
import type { WakeLatency } from '../native/wake-probe.js';
import { formatPlacementCheck } from './placement-verify.js';

/** An idle baseline above this share of the machine makes the whole-machine column unreliable. */
const BUSY_BASELINE = 0.2;

function valueOf(r: BenchReport, backend: string, m: Metric): number | null | undefined {
  return r.results.find((x) => x.backend === backend && x.metric === m)?.value;
}

function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function wakeFigures(w: WakeLatency): string {
  if (w.error) return `not measured (${w.error})`;
  const us = (x: number | null): string => (x === null ? 'n/a' : `${fmt(x)} us`);
  return `${us(w.sameCpuUs)} on one CPU, ${us(w.crossCpuUs)} across two`;
}

/**
 * The wake-up line: a userspace data plane pays a thread wake-up per hand-off, so its RTT and single
 * stream move with the cross-CPU figure (tens of us on a VM whose idle vCPUs halt), unlike kernel vxlan.
 */
export function formatWake(start: WakeLatency, end?: WakeLatency): string {
  return `thread wake-up round trip: ${wakeFigures(start)} at start${end ? `; ${wakeFigures(end)} at end` : ''}`;
}

/** The markdown table: one row per backend, each figure with its ratio to kernel vxlan. */
export function formatMarkdown(r: BenchReport): string {
  const head = ['backend', ...METRICS];
  const rows = [head, head.map(() => '---')];
  for (const b of r.backends) {
    rows.push([
      b,
      ...METRICS.map((m) => {
        const v = valueOf(r, b, m);
        if (v === undefined) return '-';
        if (v === null) return 'n/a';
        const base = valueOf(r, 'vxlan', m);
        const ratio = base && b !== 'vxlan' ? ` (${(v / base).toFixed(2)}x)` : '';
        return fmt(v) + ratio;
      }),
    ]);
  }
  const widths = head.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const table = rows.map((row) => '| ' + row.map((cell, c) => (cell === '---' ? '-'.repeat(widths[c]!) : cell.padEnd(widths[c]!))).join(' | ') + ' |').join('\n');
  const m = r.machine;
  const lines = [
    `flannelctl bench, ${r.started}, ${r.quick ? 'quick (1 s per test)' : `${r.secondsPerTest} s per test`}`,
    `machine: Linux ${m.kernel}, ${m.cpu}, ${m.cores} cores, node ${m.node}, load average ${m.loadavgStart.join(' ')} at start, ${(m.loadavgEnd ?? []).join(' ')} at end`,
  ];
  if (m.wakeStart) lines.push(formatWake(m.wakeStart, m.wakeEnd));
  if (r.placement) lines.push(`placement: ${r.placement.description}`);
  if (r.backends.length > 0) {
    lines.push(
      '',
      table,
      '',
      'Ratios in parentheses are against kernel vxlan in the same run. cpu_s_per_gb: daemon CPU seconds (all nodes) per GB moved by the TCP tests; ' +
        'machine_cpu_s_per_gb: the whole machine\'s user+nice+system+irq+softirq seconds (/proc/stat, steal and idle left out) during the TCP tests, ' +
        'less an idle baseline read just before each, per GB moved; /proc/stat is tick-sampled and counts every tenant of the machine, so other work on it shows there; ' +
        `it depends on the placement (this run: ${r.placement?.mode ?? 'shared'}). rss: largest daemon VmRSS.`,
    );
  }
  for (const b of r.backends) if (r.notes[b]) lines.push(`- ${b}: ${r.notes[b]}`);
  const busy = r.backends.map((b) => [b, Math.max(0, ...(r.idleBaselines?.[b] ?? []))] as const).filter(([, x]) => x > BUSY_BASELINE * m.cores);
  if (busy.length) {
    lines.push(`- machine_cpu_s_per_gb not meaningful for ${busy.map(([b, x]) => `${b} (${fmt(x)} of ${m.cores} CPUs busy before a test)`).join(', ')}: other work on the machine took CPU the tests would have used`);
  }
  const checks = r.backends.filter((b) => r.placementChecks?.[b]);
  if (checks.length) lines.push('', 'placement read back (threads\' Cpus_allowed_list, rx queues\' rps_cpus, softnet_stat received_rps):');
  for (const b of checks) lines.push(`- ${b}: ${formatPlacementCheck(r.placementChecks[b]!)}`);
  if (r.steadyLeases) lines.push('', formatSteadyLeases(r.steadyLeases).trimEnd());
  if (r.notes[STEADY_LEASES]) lines.push(`- ${STEADY_LEASES}: ${r.notes[STEADY_LEASES]}`);
  return lines.join('\n') + '\n';
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A hand-written SVG: one panel per metric, one horizontal bar per backend. */
export function formatSvg(r: BenchReport): string {
  const panelW = 360, barH = 16, gap = 4, labelW = 110, pad = 10;
  const metrics = METRICS.filter((m) => r.backends.some((b) => typeof valueOf(r, b, m) === 'number'));
  const panelH = 28 + r.backends.length * (barH + gap) + pad;
  const cols = 2;
  const width = cols * panelW + pad;
  const height = 40 + Math.ceil(metrics.length / cols) * panelH;
  const colors = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1'];
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${pad}" y="20" font-size="13" font-weight="bold">${esc(`flannelctl bench ${r.started.slice(0, 16)} - ${r.machine.cpu}, ${r.machine.cores} cores, Linux ${r.machine.kernel}`)}</text>`,
  ];
  metrics.forEach((m, i) => {
    const x0 = pad + (i % cols) * panelW;
    const y0 = 40 + Math.floor(i / cols) * panelH;
    const vals = r.backends.map((b) => valueOf(r, b, m));
    const max = Math.max(...vals.map((v) => (typeof v === 'number' ? v : 0)), 1e-9);
    out.push(`<text x="${x0}" y="${y0 + 14}" font-weight="bold">${esc(m)}${LOWER_IS_BETTER.has(m) ? ' (lower is better)' : ''}</text>`);
    r.backends.forEach((b, j) => {
      const y = y0 + 24 + j * (barH + gap);
      const v = vals[j];
      out.push(`<text x="${x0}" y="${y + barH - 4}">${esc(b)}</text>`);
      if (typeof v !== 'number') {
        out.push(`<text x="${x0 + labelW}" y="${y + barH - 4}" fill="#888">n/a</text>`);
        return;
      }
      const w = Math.max(1, ((panelW - labelW - 60) * v) / max);
      out.push(`<rect x="${x0 + labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${colors[j % colors.length]}"/>`);
      out.push(`<text x="${(x0 + labelW + w + 4).toFixed(1)}" y="${y + barH - 4}">${esc(fmt(v))}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Writes bench-<stamp>.{md,json,svg} and latest.* into dir; returns the paths. */
export function saveReport(r: BenchReport, dir: string): string[] {
  const stamp = r.started.replace(/[:.]/g, '-').slice(0, 19);
  const files: Array<[string, string]> = [
    ['md', formatMarkdown(r)],
    ['json', JSON.stringify(r, null, 2) + '\n'],
    ['svg', formatSvg(r)],
  ];
  const paths: string[] = [];
  for (const [ext, text] of files) {
    for (const base of [`bench-${stamp}`, 'latest']) {
      const p = join(dir, `${base}.${ext}`);
      writeFileSync(p, text);
      if (base !== 'latest') paths.push(p);
    }
  }
  return paths;
}
