// /proc/net/softnet_stat: one line of hexadecimal counters per CPU. Column 10, received_rps, counts
// the inter-processor interrupts a CPU took to process packets another CPU steered to it (RPS): with
// per-node placement it rises on each node's CPUs during a test, with nothing steered it stays still.
// Per-CPU NET_RX counts in /proc/softirqs do not tell placements apart here; this column does.
import { readFileSync } from 'node:fs';

export interface SoftnetCpu {
  cpu: number;
  /** Packets processed by this CPU's backlog / NAPI (column 1). */
  processed: number;
  /** RPS IPIs received (column 10). */
  receivedRps: number;
}

/**
 * Parses the file. Kernels since 5.x print the CPU number in column 13; older ones do not, and then
 * the line's index is the CPU (they print online CPUs only, so the index is right on a machine whose
 * CPUs are all online). Short or garbled lines are skipped.
 */
export function parseSoftnetStat(text: string): SoftnetCpu[] {
  const out: SoftnetCpu[] = [];
  text.split('\n').forEach((line, index) => {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !f.every((x) => /^[0-9a-fA-F]+$/.test(x))) return;
    const hex = (i: number): number => parseInt(f[i]!, 16);
    out.push({ cpu: f.length >= 13 ? hex(12) : index, processed: hex(0), receivedRps: hex(9) });
  });
  return out;
}

export function readSoftnet(): SoftnetCpu[] {
  return parseSoftnetStat(readFileSync('/proc/net/softnet_stat', 'utf8'));
}

/** Counters are 32-bit: a difference is taken modulo 2^32. */
const delta32 = (a: number, b: number): number => (b - a + 0x1_0000_0000) % 0x1_0000_0000;

/** Per CPU present in both, after minus before. */
export function softnetDelta(before: readonly SoftnetCpu[], after: readonly SoftnetCpu[]): SoftnetCpu[] {
  return after.flatMap((b) => {
    const a = before.find((x) => x.cpu === b.cpu);
    return a ? [{ cpu: b.cpu, processed: delta32(a.processed, b.processed), receivedRps: delta32(a.receivedRps, b.receivedRps) }] : [];
  });
}

/** Sums per CPU (several test windows into one). */
export function addSoftnet(total: readonly SoftnetCpu[], more: readonly SoftnetCpu[]): SoftnetCpu[] {
  const cpus = [...new Set([...total, ...more].map((x) => x.cpu))].sort((a, b) => a - b);
  return cpus.map((cpu) => {
    const a = total.find((x) => x.cpu === cpu);
    const b = more.find((x) => x.cpu === cpu);
    return { cpu, processed: (a?.processed ?? 0) + (b?.processed ?? 0), receivedRps: (a?.receivedRps ?? 0) + (b?.receivedRps ?? 0) };
  });
}
