// What to check and what to feed iptables-restore, from the rules we want and what iptables-save shows.
// Pure: the apply layer only runs the binaries.
import type { SavedTable } from './iptables-save.js';
import { OWN_CHAINS, ruleLine, type Rule } from './rules.js';

const sameSpec = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

function tablesInOrder(rules: readonly Rule[]): string[] {
  return [...new Set(rules.map((r) => r.table))];
}

/**
 * Why the installed rules differ from `rules` (empty when they match). Our chains must hold exactly our
 * rules in our order (order decides what is masqueraded); the jumps in built-in chains must exist.
 */
export function findProblems(saved: ReadonlyMap<string, SavedTable>, rules: readonly Rule[]): string[] {
  const problems: string[] = [];
  for (const table of tablesInOrder(rules)) {
    const t = saved.get(table);
    const want = rules.filter((r) => r.table === table);
    for (const chain of new Set(want.filter((r) => OWN_CHAINS.has(r.chain)).map((r) => r.chain))) {
      if (!t?.chains.has(chain)) {
        problems.push(`chain ${chain} missing in table ${table}`);
        continue;
      }
      const have = t.rules.filter((r) => r.chain === chain).map((r) => r.spec);
      const expected = want.filter((r) => r.chain === chain).map((r) => r.spec);
      if (have.length !== expected.length || !have.every((h, i) => sameSpec(h, expected[i]!))) {
        problems.push(`chain ${chain} in table ${table} holds ${have.length} rules, not flannel's ${expected.length}`);
      }
    }
    for (const r of want.filter((x) => !OWN_CHAINS.has(x.chain))) {
      if (!t?.rules.some((h) => h.chain === r.chain && sameSpec(h.spec, r.spec))) problems.push(`rule missing: ${ruleLine('-A', r)} (table ${table})`);
    }
  }
  return problems;
}

/** How many copies of `r` the saved table has (jump rules may have been duplicated by hand). */
function copies(t: SavedTable | undefined, r: Rule): number {
  return t ? t.rules.filter((h) => h.chain === r.chain && sameSpec(h.spec, r.spec)).length : 0;
}

/**
 * One atomic iptables-restore --noflush payload that (re)installs `rules`: declaring our chains creates
 * them or flushes them (iptables-restore semantics with --noflush), existing copies of the jumps are
 * deleted and everything is appended in flannel's order, so nothing foreign ends up between our rules.
 */
export function bootstrapPayload(saved: ReadonlyMap<string, SavedTable>, rules: readonly Rule[]): string {
  let out = '';
  for (const table of tablesInOrder(rules)) {
    const t = saved.get(table);
    const want = rules.filter((r) => r.table === table);
    out += `*${table}\n`;
    for (const chain of new Set(want.filter((r) => OWN_CHAINS.has(r.chain)).map((r) => r.chain))) out += `:${chain} - [0:0]\n`;
    for (const r of want.filter((x) => !OWN_CHAINS.has(x.chain))) {
      for (let i = 0; i < copies(t, r); i++) out += ruleLine('-D', r) + '\n';
    }
    for (const r of want) out += ruleLine('-A', r) + '\n';
    out += 'COMMIT\n';
  }
  return out;
}

/**
 * Removes what bootstrap installed: the jumps, then our chains (flushed by the declaration, then
 * deleted). Empty when nothing of ours is there. `deleteChains: false` leaves empty chains behind,
 * the fallback when another rule still references them.
 */
export function teardownPayload(saved: ReadonlyMap<string, SavedTable>, rules: readonly Rule[], deleteChains = true): string {
  let out = '';
  for (const table of tablesInOrder(rules)) {
    const t = saved.get(table);
    if (!t) continue;
    const want = rules.filter((r) => r.table === table);
    let body = '';
    const chains = [...new Set(want.filter((r) => OWN_CHAINS.has(r.chain)).map((r) => r.chain))].filter((c) => t.chains.has(c));
    for (const c of chains) body += `:${c} - [0:0]\n`;
    for (const r of want.filter((x) => !OWN_CHAINS.has(x.chain))) {
      for (let i = 0; i < copies(t, r); i++) body += ruleLine('-D', r) + '\n';
    }
    if (deleteChains) for (const c of chains) body += `-X ${c}\n`;
    if (body !== '') out += `*${table}\n${body}COMMIT\n`;
  }
  return out;
}

/**
 * Removes everything flannel's iptables mode leaves, whatever its age or table: every rule that jumps to
 * FLANNEL-POSTRTG or FLANNEL-FWD (from POSTROUTING, FORWARD or anywhere), then the chains themselves.
 * flannel's own clean-up looks for FLANNEL-FWD in nat (it lives in filter) and cannot delete
 * FLANNEL-POSTRTG while POSTROUTING still jumps to it. Empty when there is nothing to remove.
 */
export function leftoverPayload(saved: ReadonlyMap<string, SavedTable>): string {
  let out = '';
  for (const [table, t] of saved) {
    const chains = [...OWN_CHAINS].filter((c) => t.chains.has(c));
    const jumps = t.rules.filter((r) => !OWN_CHAINS.has(r.chain) && r.spec.some((a, i) => (a === '-j' || a === '-g') && OWN_CHAINS.has(r.spec[i + 1] ?? '')));
    if (chains.length === 0 && jumps.length === 0) continue;
    out += `*${table}\n`;
    for (const c of chains) out += `:${c} - [0:0]\n`;
    for (const r of jumps) out += ruleLine('-D', { table: table as Rule['table'], chain: r.chain, spec: r.spec }) + '\n';
    for (const c of chains) out += `-X ${c}\n`;
    out += 'COMMIT\n';
  }
  return out;
}
