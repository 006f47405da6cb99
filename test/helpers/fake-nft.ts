// An in-memory nft behind the NftRunner interface for unit tests: applies the statements our
// transactions use (add/delete table, add/flush/delete chain, add rule) all-or-nothing, lists in nft's
// JSON shape (a rule's "expr" is its text here), records every script. Tests change it "by hand".
import { NftMissingError, type NftRunner } from '../../src/firewall/nft.js';

interface Chain {
  head: string;
  rules: string[];
}
type Tables = Map<string, Map<string, Chain>>;

const clone = (t: Tables): Tables => new Map([...t].map(([k, cs]) => [k, new Map([...cs].map(([n, c]) => [n, { head: c.head, rules: [...c.rules] }]))]));

export class FakeNft implements NftRunner {
  tables: Tables = new Map();
  scripts: string[] = [];
  checks: string[] = [];
  missing = false;
  versionText = 'nftables v1.0.6 (Lester Gooch #5)';
  /** What `nft --check` accepts (e.g. refuse fully-random). */
  accept: (script: string) => boolean = () => true;

  async version(): Promise<string> {
    if (this.missing) throw new NftMissingError();
    return this.versionText;
  }

  async check(script: string): Promise<boolean> {
    if (this.missing) throw new NftMissingError();
    this.checks.push(script);
    return this.accept(script);
  }

  async run(script: string): Promise<void> {
    if (this.missing) throw new NftMissingError();
    this.scripts.push(script);
    const next = clone(this.tables);
    for (const line of script.split('\n').filter(Boolean)) {
      const m = /^(add|delete|flush) (table|chain|rule) (ip6?) (\S+)(?: (\S+))?(.*)$/.exec(line);
      if (!m) throw new Error(`fake nft: cannot parse ${line}`);
      const [, verb, what, fam, table, chain, rest] = m;
      const key = `${fam} ${table}`;
      const t = next.get(key);
      if (what === 'table') {
        if (verb === 'add') next.set(key, t ?? new Map());
        else if (!t) throw new Error(`Error: No such file or directory: ${line}`);
        else next.delete(key);
        continue;
      }
      if (!t) throw new Error(`Error: No such file or directory: ${line}`);
      const c = t.get(chain!);
      if (what === 'chain') {
        if (verb === 'add') t.set(chain!, c ?? { head: rest!.trim(), rules: [] });
        else if (!c) throw new Error(`Error: No such file or directory: ${line}`);
        else if (verb === 'flush') c.rules = [];
        else t.delete(chain!);
      } else {
        if (!c) throw new Error(`Error: No such file or directory: ${line}`);
        c.rules.push(rest!.trim());
      }
    }
    this.tables = next;
  }

  async listJson(what: string): Promise<string> {
    if (this.missing) throw new NftMissingError();
    const meta = { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } };
    if (what === 'tables') {
      return JSON.stringify({ nftables: [meta, ...[...this.tables.keys()].map((k, i) => ({ table: { family: k.split(' ')[0], name: k.split(' ')[1], handle: i + 1 } }))] });
    }
    const key = what.replace(/^table /, '');
    const t = this.tables.get(key);
    if (!t) throw new Error(`nft -j list ${what}: Error: No such file or directory`);
    const [family, name] = key.split(' ');
    const items: unknown[] = [meta, { table: { family, name, handle: 1 } }];
    let handle = 2;
    for (const [chain, c] of t) {
      const hook = /type (\w+) hook (\w+) priority (\d+)/.exec(c.head);
      items.push({ chain: { family, table: name, name: chain, handle: handle++, ...(hook ? { type: hook[1], hook: hook[2], prio: Number(hook[3]), policy: 'accept' } : {}) } });
    }
    for (const [chain, c] of t) for (const r of c.rules) items.push({ rule: { family, table: name, chain, handle: handle++, expr: [r] } });
    return JSON.stringify({ nftables: items });
  }

  /** Rules of one chain, or undefined when the chain (or table) is absent. */
  rules(table: string, chain: string): string[] | undefined {
    return this.tables.get(table)?.get(chain)?.rules;
  }
}
