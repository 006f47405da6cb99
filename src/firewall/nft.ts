// The nftables mode's only shell-outs: `nft -f -` (one transaction), `nft --check -f -` (a dry run) and
// `nft -j list`, as knftables runs them for flannel. A missing binary is a clear error naming the
// Debian package.
import { execFile } from 'node:child_process';

export interface NftRunner {
  /** Feeds a transaction to `nft -f -`: all of it or nothing. */
  run(script: string): Promise<void>;
  /** `nft --check -f -`: whether the kernel and nft would accept it; nothing changes. */
  check(script: string): Promise<boolean>;
  /** `nft -j list <what>` (e.g. "tables", "table ip flannel-ipv4"). */
  listJson(what: string): Promise<string>;
  /** `nft --version`, e.g. "nftables v1.0.6 (Lester Gooch #5)". */
  version(): Promise<string>;
}

export class NftMissingError extends Error {
  constructor() {
    super('nft not found in PATH: install nftables (apt-get install nftables); net-conf EnableNFTables needs it');
    this.name = 'NftMissingError';
  }
}

function nft(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('nft', args, { encoding: 'utf8', timeout: 30_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') reject(new NftMissingError());
        else reject(new Error(`nft ${args.join(' ')}: ${String(stderr).trim().split('\n')[0] || err.message}`));
        return;
      }
      resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export function execNftRunner(): NftRunner {
  return {
    run: async (script) => void (await nft(['-f', '-'], script)),
    check: (script) =>
      nft(['--check', '-f', '-'], script).then(
        () => true,
        (e: unknown) => {
          if (e instanceof NftMissingError) throw e;
          return false;
        },
      ),
    listJson: (what) => nft(['-j', 'list', ...what.split(' ')]),
    version: () => nft(['--version']),
  };
}

/** knftables' rule: nft 0.x and 1.0.0 are too old (their JSON and comments differ). */
export function nftTooOld(versionText: string): boolean {
  return /^nftables v0\./.test(versionText) || /^nftables v1\.0\.0\b/.test(versionText);
}
