// What to feed `nft -f` and whether the installed rules still match, from the chains we want and what
// `nft -j list` shows. Pure: nft-firewall.ts only runs the binary.
//
// nft's JSON carries handles (they change on every re-add) and a metainfo object (nft's version), and
// nft 1.0.6 leaves comments out: normalised away, what remains is what the kernel enforces — chain
// type, hook, priority, policy, and each rule's expression in order.
import { isRecord } from '../util/go-json.js';
import { addTableLine, chainLines, deleteChainLine, NFT_CHAINS, type NftChain, type NftTable } from './nft-rules.js';

export interface NftChainState {
  type?: string;
  hook?: string;
  prio?: number;
  policy?: string;
  /** Each rule's `expr` as compact JSON, in order. */
  rules: string[];
}

/** One table as read back: its chains by name (empty when the table has none). */
export type NftTableState = Map<string, NftChainState>;

/** Removes what changes without changing what the kernel does: handles, metainfo (recursively). */
export function normalizeNftJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.filter((x) => !(isRecord(x) && 'metainfo' in x)).map(normalizeNftJson);
  if (!isRecord(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (k !== 'handle' && k !== 'metainfo') out[k] = normalizeNftJson(x);
  return out;
}

/** `nft -j list table <family> <name>` output -> the table's chains (throws on output that is not nft's JSON). */
export function parseNftTable(json: string): NftTableState {
  const doc = JSON.parse(json) as unknown;
  const items = isRecord(doc) && Array.isArray(doc.nftables) ? (doc.nftables as unknown[]) : undefined;
  if (!items) throw new Error(`nft -j list printed no "nftables" array: ${json.slice(0, 80)}`);
  const chains: NftTableState = new Map();
  for (const item of normalizeNftJson(items) as unknown[]) {
    if (!isRecord(item)) continue;
    if (isRecord(item.chain)) {
      const c = item.chain;
      chains.set(String(c.name), {
        type: typeof c.type === 'string' ? c.type : undefined,
        hook: typeof c.hook === 'string' ? c.hook : undefined,
        prio: typeof c.prio === 'number' ? c.prio : undefined,
        policy: typeof c.policy === 'string' ? c.policy : undefined,
        rules: chains.get(String(c.name))?.rules ?? [],
      });
    } else if (isRecord(item.rule)) {
      const name = String(item.rule.chain);
      const c = chains.get(name) ?? { rules: [] };
      c.rules.push(JSON.stringify(item.rule.expr));
      chains.set(name, c);
    }
  }
  return chains;
}

/** `nft -j list tables` output -> "family name" of every table. */
export function parseNftTables(json: string): Set<string> {
  const doc = JSON.parse(json) as unknown;
  const items = isRecord(doc) && Array.isArray(doc.nftables) ? (doc.nftables as unknown[]) : [];
  const out = new Set<string>();
  for (const item of items) if (isRecord(item) && isRecord(item.table)) out.add(`${String(item.table.family)} ${String(item.table.name)}`);
  return out;
}

export const tableKey = (t: NftTable): string => `${t.family} ${t.name}`;

/** A chain's state as one comparable string. */
export const chainFingerprint = (c: NftChainState | undefined): string => (c ? JSON.stringify([c.type, c.hook, c.prio, c.policy, c.rules]) : 'missing');

/**
 * The one transaction that sets a table up: the table (always; flannel creates both), each wanted chain
 * as add-chain + flush + add-rules, and `delete chain` for a forward/postrtg chain of ours that an
 * earlier run left while its option is now off. `current` undefined: the table does not exist yet.
 */
export function setupScript(table: NftTable, want: readonly NftChain[], current: NftTableState | undefined): string {
  const lines = [addTableLine(table)];
  for (const c of want) lines.push(...chainLines(c));
  const wanted = new Set(want.map((c) => c.name));
  for (const name of NFT_CHAINS) {
    if (!wanted.has(name) && current?.has(name)) lines.push(deleteChainLine(table, name));
  }
  return lines.join('\n') + '\n';
}

/** Why the installed chains differ from what was installed (empty when they match). */
export function findNftProblems(table: NftTable, recorded: ReadonlyMap<string, string>, current: NftTableState | undefined): string[] {
  if (!current) return [`table ${tableKey(table)} missing`];
  const problems: string[] = [];
  for (const [name, fp] of recorded) {
    const now = chainFingerprint(current.get(name));
    if (now === 'missing') problems.push(`chain ${name} missing in table ${tableKey(table)}`);
    else if (now !== fp) problems.push(`chain ${name} in table ${tableKey(table)} changed`);
  }
  return problems;
}
