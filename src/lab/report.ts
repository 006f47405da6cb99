// `flannelctl lab`'s report: the nodes with their subnets and MTUs, then the all-pairs matrix per family.
import type { LabNode } from './daemons.js';
import type { PairResult } from './checks.js';

function table(rows: string[][]): string {
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((row) => (row[c] ?? '').length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(w[c]!)).join('  ').trimEnd()).join('\n');
}

export function formatLabReport(lab: { nodes: readonly LabNode[]; opts: { ipv6: boolean } }, results: PairResult[]): string {
  const rows = [['node', 'netns', 'public IP', 'subnet', 'IPv6 subnet', 'MTU', 'pod']];
  for (const n of lab.nodes) {
    rows.push([n.name, n.ns.name, n.underlayIP, n.subnetEnv.FLANNEL_SUBNET ?? '-', n.subnetEnv.FLANNEL_IPV6_SUBNET ?? '-', n.subnetEnv.FLANNEL_MTU ?? '-', n.podIP + (n.podIPv6 ? ` ${n.podIPv6}` : '')]);
  }
  const families: Array<4 | 6> = lab.opts.ipv6 ? [4, 6] : [4];
  const out = [table(rows), ''];
  for (const fam of families) {
    const m = [[`ping IPv${fam}`, ...lab.nodes.map((n) => n.name)]];
    for (const a of lab.nodes) {
      m.push([a.name, ...lab.nodes.map((b) => (a === b ? '-' : results.find((r) => r.from === a.name && r.to === b.name && r.family === fam)?.ok ? 'ok' : 'FAIL'))]);
    }
    out.push(table(m), '');
  }
  const failed = results.filter((r) => !r.ok);
  out.push(`${results.length - failed.length}/${results.length} pod-to-pod pairs passed`);
  for (const f of failed) out.push(`  FAIL ${f.from} -> ${f.to} IPv${f.family}: ${f.detail}`);
  return out.join('\n');
}
