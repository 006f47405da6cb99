// flannel's nftables traffic manager (EnableNFTables: true): tables ip flannel-ipv4 and ip6
// flannel-ipv6, always both, with the forward and postrtg chains of nft-rules.ts, each table set up in
// one `nft -f` transaction (add table, add chain + flush + add rules per chain). Beyond flannel: nft is
// checked before anything is touched (preflight), the chains are re-checked every -iptables-resync
// seconds against what was installed and re-applied when changed or gone, and a chain of ours whose
// option is now off is removed. Like flannel, the tables stay on exit (pods keep working across a
// restart; the next start flushes and refills them).
import type { NetworkConfig } from '../config/types.js';
import type { Family, IPNet } from '../ip/index.js';
import { log } from '../log.js';
import type { Lease } from '../subnet/types.js';
import type { FirewallOptions, FirewallStats } from './firewall.js';
import { NftMissingError, nftTooOld, type NftRunner } from './nft.js';
import { chainFingerprint, findNftProblems, parseNftTable, parseNftTables, setupScript, tableKey, type NftTableState } from './nft-plan.js';
import { ResyncLoop } from './resync.js';
import { addTableLine, forwardChain, fullyRandomProbe, NFT_TABLES, postrtgChain, type NftChain, type NftTable } from './nft-rules.js';

interface Installed {
  table: NftTable;
  want: NftChain[];
  /** Chain name -> its state right after we installed it. */
  fingerprints: Map<string, string>;
}

export class NftFirewall {
  private installed: Installed[] = [];
  private readonly resync = new ResyncLoop<Installed>({
    what: 'nftables',
    announce: 'Some nftables rules are missing or changed; setting them up again',
    items: () => this.installed.filter((i) => i.want.length > 0),
    problems: async (i) => findNftProblems(i.table, i.fingerprints, await this.read(i.table)),
    repair: async (i) => {
      this.installed[this.installed.indexOf(i)] = await this.install(i.table, i.want);
    },
  });
  private readonly counters = this.resync.counters;

  constructor(
    private readonly runner: NftRunner,
    private readonly opts: FirewallOptions,
  ) {}

  /** Before the lease or any device: nft is there, new enough, and allowed to change the ruleset. */
  async preflight(): Promise<void> {
    let version: string;
    try {
      version = (await this.runner.version()).trim();
    } catch (e) {
      if (e instanceof NftMissingError) throw e;
      throw new Error(`nftables: could not run nft: ${(e as Error).message}`);
    }
    if (nftTooOld(version)) throw new Error(`nftables: nft version must be v1.0.1 or later (got ${version}); install a newer nftables`);
    if (!(await this.runner.check(addTableLine(NFT_TABLES[4])))) {
      throw new Error('nftables: nft --check refused to add table ip flannel-ipv4 (no CAP_NET_ADMIN, or a kernel without nf_tables)');
    }
    log.info(`nftables mode: ${version}`);
  }

  private async read(table: NftTable): Promise<NftTableState | undefined> {
    const tables = parseNftTables(await this.runner.listJson('tables'));
    if (!tables.has(tableKey(table))) return undefined;
    return parseNftTable(await this.runner.listJson(`table ${table.family} ${table.name}`));
  }

  /** Installs (or re-installs) one table's chains and records what the kernel then shows. */
  private async install(table: NftTable, want: NftChain[]): Promise<Installed> {
    await this.runner.run(setupScript(table, want, await this.read(table)));
    const now = await this.read(table);
    const fingerprints = new Map(want.map((c) => [String(c.name), chainFingerprint(now?.get(String(c.name)))]));
    return { table, want, fingerprints };
  }

  async setup(config: NetworkConfig, lease: Lease): Promise<void> {
    log.info('Starting flannel in nftables mode...');
    let fullyRandom = false;
    if (this.opts.ipMasq && !this.opts.randomFullyDisable) {
      fullyRandom = await this.runner.check(fullyRandomProbe());
      if (!fullyRandom) log.warning('nftables: random fully unsupported');
    }
    const families: Array<[Family, IPNet | undefined, IPNet | undefined]> = [
      [4, config.enableIPv4 ? config.network : undefined, lease.subnet],
      [6, config.enableIPv6 ? config.ipv6Network : undefined, lease.ipv6Subnet],
    ];
    for (const [family, network, subnet] of families) {
      const want: NftChain[] = [];
      if (network && this.opts.forwardRules) {
        log.info(`Changing default FORWARD chain policy to ACCEPT${family === 6 ? ' (ipv6)' : ''}`);
        want.push(forwardChain(family, network));
      }
      if (network && subnet && this.opts.ipMasq) {
        log.info(`nftables: setting up masking rules (ipv${family})`);
        want.push(postrtgChain(family, network, subnet, fullyRandom));
      }
      // Both tables always exist (flannel's Init), with or without chains.
      try {
        this.installed.push(await this.install(NFT_TABLES[family], want));
      } catch (e) {
        this.counters.errors++;
        throw new Error(`nftables: couldn't set up table ${tableKey(NFT_TABLES[family])}: ${(e as Error).message}`);
      }
    }
    if (this.installed.some((i) => i.want.length > 0)) this.resync.start(this.opts.resyncSeconds);
  }

  /** One resync pass; returns how many tables it had to set up again. */
  ensure(): Promise<number> {
    return this.resync.pass();
  }

  /** Stops the resync loop; the tables stay, as flannel leaves them. */
  async teardown(): Promise<void> {
    this.resync.stop();
    await this.resync.serialize(async () => undefined, undefined);
  }

  stats(): FirewallStats {
    return { ruleSets: this.installed.reduce((n, i) => n + i.want.length, 0), ...this.counters };
  }
}
