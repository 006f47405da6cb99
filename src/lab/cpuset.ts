// CPU sets in the kernel's two spellings: the list form of Cpus_allowed_list and taskset -c ("0-2,5")
// and the hexadecimal mask of rps_cpus ("00000000,00000025": 32-bit words, most significant first).
// Pure functions, so the placement's plan and its read-back checks can be unit-tested.

/** "0-2,5" -> [0, 1, 2, 5] (sorted, unique); throws on anything else, naming the text. */
export function parseCpuList(text: string): number[] {
  const out = new Set<number>();
  const t = text.trim();
  if (t === '') return [];
  for (const part of t.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`bad CPU list "${text}": expected e.g. "0-3,5"`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new Error(`bad CPU list "${text}": range ${part} runs backwards`);
    for (let c = lo; c <= hi; c++) out.add(c);
  }
  return [...out].sort((a, b) => a - b);
}

/** [0, 1, 2, 5] -> "0-2,5" (the form the kernel prints and taskset -c takes). */
export function formatCpuList(cpus: readonly number[]): string {
  const s = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    parts.push(i === j ? String(s[i]) : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** [0, 2, 5] -> "25": the hexadecimal mask rps_cpus accepts (commas between 32-bit words). */
export function formatCpuMask(cpus: readonly number[]): string {
  let mask = 0n;
  for (const c of cpus) mask |= 1n << BigInt(c);
  const hex = mask.toString(16);
  // Group into 32-bit words from the right, as the kernel prints bitmaps.
  const words: string[] = [];
  for (let end = hex.length; end > 0; end -= 8) words.unshift(hex.slice(Math.max(0, end - 8), end));
  return words.map((w, i) => (i === 0 ? w : w.padStart(8, '0'))).join(',');
}

/** "00000000,00000025" -> [0, 2, 5]; "0" -> [] (no steering: processed where the packet arrived). */
export function parseCpuMask(text: string): number[] {
  const hex = text.trim().replace(/,/g, '');
  if (!/^[0-9a-fA-F]+$/.test(hex)) throw new Error(`bad CPU mask "${text}": expected hexadecimal words such as "00000003"`);
  let mask = BigInt(`0x${hex}`);
  const out: number[] = [];
  for (let c = 0; mask > 0n; c++, mask >>= 1n) if (mask & 1n) out.push(c);
  return out;
}

export const sameCpus = (a: readonly number[], b: readonly number[]): boolean => formatCpuList(a) === formatCpuList(b);
