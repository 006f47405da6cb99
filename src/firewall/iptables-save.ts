// Reads iptables-save output: per table, the chains (with policies) and the rules as argument lists,
// so our rules can be compared token by token regardless of quoting.

export interface SavedTable {
  /** Chain name -> policy ("ACCEPT", "DROP", or "-" for user chains). */
  chains: Map<string, string>;
  /** `-A <chain> ...` lines, tokenised (without the leading "-A"). */
  rules: Array<{ chain: string; spec: string[] }>;
}

/** Splits one save line into arguments: double quotes group, backslash escapes inside quotes. */
export function tokenize(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inToken = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '\\' && i + 1 < line.length) cur += line[++i];
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') {
      quoted = true;
      inToken = true;
    } else if (c === ' ' || c === '\t') {
      if (inToken) out.push(cur);
      cur = '';
      inToken = false;
    } else {
      cur += c;
      inToken = true;
    }
  }
  if (inToken) out.push(cur);
  return out;
}

export function parseSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let cur: SavedTable | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      cur = { chains: new Map(), rules: [] };
      tables.set(line.slice(1), cur);
    } else if (!cur) {
      continue;
    } else if (line.startsWith(':')) {
      const [name, policy] = line.slice(1).split(/\s+/);
      if (name) cur.chains.set(name, policy ?? '-');
    } else if (line.startsWith('-A ')) {
      const t = tokenize(line);
      if (t[1]) cur.rules.push({ chain: t[1], spec: t.slice(2) });
    }
  }
  return tables;
}
