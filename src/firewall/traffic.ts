// flannel's traffic manager choice (main.go): net-conf EnableNFTables picks nftables (nft-firewall.ts)
// or iptables (firewall.ts); the other mode's rules are cleaned up at start (leftovers.ts); iptables mode
// first requires br_netfilter (br-netfilter.ts). The daemon calls preflight() as soon as the config is
// known, before the lease, devices or rules exist, so a missing nft or module stops it with nothing
// half-installed.
import type { NetworkConfig } from '../config/types.js';
import { log } from '../log.js';
import type { Lease } from '../subnet/types.js';
import { brNetfilterProblem } from './br-netfilter.js';
import { Firewall, type FirewallOptions, type FirewallStats } from './firewall.js';
import type { IptablesRunner } from './iptables.js';
import { cleanIptablesLeftovers, cleanNftLeftovers } from './leftovers.js';
import type { NftRunner } from './nft.js';
import { NftFirewall } from './nft-firewall.js';

export interface TrafficOptions extends FirewallOptions {
  /** flannelts' -br-netfilter-check (default true). */
  brNetfilterCheck: boolean;
}

export interface TrafficRunners {
  iptables: IptablesRunner;
  nft: NftRunner;
  /** existsSync, for the br_netfilter sysctls (tests hide them). */
  exists?: (path: string) => boolean;
}

interface Mode {
  setup(config: NetworkConfig, lease: Lease): Promise<void>;
  teardown(): Promise<void>;
  stats(): FirewallStats;
}

export class TrafficRules {
  private mode?: Mode;
  private nft?: NftFirewall;

  constructor(
    private readonly runners: TrafficRunners,
    private readonly opts: TrafficOptions,
  ) {}

  /** Refuses to start (throws one line) when the chosen mode cannot work on this host. */
  async preflight(config: NetworkConfig): Promise<void> {
    if (config.enableNFTables) {
      this.nft = new NftFirewall(this.runners.nft, this.opts);
      await this.nft.preflight();
      return;
    }
    const problem = brNetfilterProblem(config, this.runners.exists);
    if (!problem) return;
    if (this.opts.brNetfilterCheck) throw new Error(problem);
    log.warning(`br_netfilter is not loaded; going on as -br-netfilter-check=false asks (pods on a Linux bridge would bypass iptables)`);
  }

  async setup(config: NetworkConfig, lease: Lease): Promise<void> {
    log.info('Cleaning-up unused traffic manager rules');
    if (config.enableNFTables) {
      await cleanIptablesLeftovers(this.runners.iptables);
      this.mode = this.nft ?? new NftFirewall(this.runners.nft, this.opts);
    } else {
      await cleanNftLeftovers(this.runners.nft);
      if (!this.opts.ipMasq && !this.opts.forwardRules) return;
      this.mode = new Firewall(this.runners.iptables, this.opts);
    }
    await this.mode.setup(config, lease);
  }

  async teardown(): Promise<void> {
    await this.mode?.teardown();
  }

  stats(): FirewallStats | undefined {
    return this.mode?.stats();
  }
}
