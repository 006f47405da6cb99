// The only shell-out at runtime: iptables-save to read rules, iptables-restore --noflush to change
// them atomically (ip6tables-* for IPv6). A missing binary is a clear error naming it.
import { execFile } from 'node:child_process';
import type { Family } from '../ip/index.js';
import { packageFor } from '../util/system-packages.js';

export interface IptablesRunner {
  /** `iptables-save -t <table>` output. */
  save(family: Family, table: string): Promise<string>;
  /** Feeds `payload` to `iptables-restore --noflush` (with --wait when supported). */
  restore(family: Family, payload: string): Promise<void>;
  /** `iptables-save --version`, e.g. "iptables-save v1.8.9 (nf_tables)". */
  version(family: Family): Promise<string>;
}

export class IptablesMissingError extends Error {
  constructor(readonly binary: string) {
    super(`${binary} not found in PATH: apt-get install ${packageFor(binary).name} (flanneld needs iptables-save and iptables-restore for -ip-masq and -iptables-forward-rules)`);
    this.name = 'IptablesMissingError';
  }
}

/** "iptables-save v1.8.9 (nf_tables)" -> [1, 8, 9]. */
export function parseIptablesVersion(text: string): [number, number, number] | undefined {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** go-iptables' rule: --random-fully (and iptables-restore --wait) arrived in iptables 1.6.2. */
export function atLeast162(v: [number, number, number] | undefined): boolean {
  if (!v) return false;
  const [a, b, c] = v;
  return a > 1 || (a === 1 && (b > 6 || (b === 6 && c >= 2)));
}

const bin = (family: Family, tool: 'save' | 'restore'): string => `${family === 4 ? 'iptables' : 'ip6tables'}-${tool}`;

function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'utf8', timeout: 30_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') reject(new IptablesMissingError(cmd));
        else reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
        return;
      }
      resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export function execIptablesRunner(): IptablesRunner {
  const waits = new Map<Family, boolean>();
  const version = (family: Family): Promise<string> => run(bin(family, 'save'), ['--version']);
  return {
    version,
    save: (family, table) => run(bin(family, 'save'), ['-t', table]),
    restore: async (family, payload) => {
      if (!waits.has(family)) waits.set(family, atLeast162(parseIptablesVersion(await version(family))));
      await run(bin(family, 'restore'), waits.get(family) ? ['--noflush', '--wait'] : ['--noflush'], payload);
    },
  };
}
