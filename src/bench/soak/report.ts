// The soak's report: markdown for people (printed and saved) next to the JSON.
import { FAULT_KINDS, type Tally } from './ledger.js';
import type { SoakReport } from './soak.js';

const pct = (t: Tally): string => (t.sent === 0 ? '-' : `${t.lost} / ${t.sent} (${((100 * t.lost) / t.sent).toFixed(2)} %)`);

export function formatSoakMarkdown(r: SoakReport): string {
  const l = r.ledger;
  const lines = [
    `# flannelctl bench --soak ${r.seconds}: ${r.passed ? 'PASSED' : 'FAILED'}`,
    '',
    `started ${r.started}; 3 udp nodes on etcd; liveness bound ${r.livenessSeconds} s; settle ${r.settleMs / 1000} s after each fault; ` +
      `one echo per ${r.echoIntervalMs} ms per pod pair (6 pairs); load average ${r.loadavg.start.join('/')} -> ${r.loadavg.end.join('/')}`,
    '',
    '| fault | count | echoes lost while active | lost by design (killed daemon) | lost while settling (not counted) |',
    '| ----- | ----- | ------------------------ | ------------------------------ | --------------------------------- |',
    ...FAULT_KINDS.map((k) => {
      const t = l.byKind[k];
      return `| ${k} | ${t.faults} | ${pct(t.during)} | ${k === 'daemon-kill' ? pct(t.byDesign) : '-'} | ${pct(t.settling)} |`;
    }),
    `| (steady) | - | ${pct(l.steady)} | - | - |`,
    '',
    `counted echoes lost: ${l.countedLost}`,
    `checkpoints (every node = etcd, ${r.settleMs / 1000} s after each fault): ${r.faults.filter((f) => f.checkpoint.ok).length} of ${r.faults.length} ok`,
    `final: ${r.final.ok ? `every node's peers and routes = etcd's leases (${r.final.convergeMs} ms after the churn stopped)` : 'MISMATCH'}; ${r.final.detail.join('; ')}`,
    `daemons alive at the end: ${r.daemonsAlive ? 'yes' : 'NO'}; lease churn: ${r.churn.writes} writes (${r.churn.failures} failed while etcd was away)`,
    `watch replacements (all daemons): ${Object.entries(r.replacements).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
    '',
    '## Faults',
    '',
    ...r.faults.map((f, i) => `${i + 1}. ${f.kind}: ${f.detail}; checkpoint ${f.checkpoint.ok ? 'ok' : `FAILED (${f.checkpoint.detail})`}`),
  ];
  return lines.join('\n') + '\n';
}
