// flanneld's iptables mode (traffic.ts picks it): masquerade rules (-ip-masq) and forward-accept rules
// (-iptables-forward-rules, default on), installed atomically, checked every -iptables-resync seconds
// and re-applied when anything is missing or out of order, removed on clean shutdown.
import type { NetworkConfig } from '../config/types.js';
import type { Family, IPNet } from '../ip/index.js';
import { log } from '../log.js';
import type { Lease } from '../subnet/types.js';
import { atLeast162, IptablesMissingError, parseIptablesVersion, type IptablesRunner } from './iptables.js';
import { parseSave, type SavedTable } from './iptables-save.js';
import { bootstrapPayload, findProblems, teardownPayload } from './plan.js';
import { ResyncLoop, type ResyncCounters } from './resync.js';
import { forwardRules, masqRules, type Rule } from './rules.js';

export interface FirewallOptions {
  ipMasq: boolean;
  forwardRules: boolean;
  /** Seconds between checks (flannel's -iptables-resync, default 5). */
  resyncSeconds: number;
  /** flannel's -ip-masq-fully-random-disable. */
  randomFullyDisable?: boolean;
}

interface RuleSet {
  family: Family;
  kind: 'masq' | 'forward';
  rules: Rule[];
}

export interface FirewallStats extends ResyncCounters {
  ruleSets: number;
}

export class Firewall {
  private sets: RuleSet[] = [];
  /** The resync passes, and with them teardown: never two iptables-restore runs of ours at once. */
  private readonly resync = new ResyncLoop<RuleSet>({
    what: 'iptables',
    announce: 'Some iptables rules are missing; deleting and recreating rules',
    items: () => this.sets,
    problems: async (set) => findProblems(await this.saved(set), set.rules),
    repair: (set) => this.bootstrap(set),
  });
  private readonly counters = this.resync.counters;

  constructor(
    private readonly runner: IptablesRunner,
    private readonly opts: FirewallOptions,
  ) {}

  /**
   * Installs the rules for the lease. A failure of the masquerade rules (asked for explicitly) is
   * thrown; forward rules are on by default, so, like flannel, their failure is logged and the
   * daemon goes on.
   */
  async setup(config: NetworkConfig, lease: Lease): Promise<void> {
    log.info('Starting flannel in iptables mode...');
    const families: Array<[Family, IPNet | undefined, IPNet | undefined]> = [
      [4, config.enableIPv4 ? config.network : undefined, lease.subnet],
      [6, config.enableIPv6 ? config.ipv6Network : undefined, lease.ipv6Subnet],
    ];
    for (const [family, network, subnet] of families) {
      if (!network) continue;
      if (this.opts.ipMasq && subnet) {
        const randomFully = !this.opts.randomFullyDisable && atLeast162(parseIptablesVersion(await this.runner.version(family)));
        log.info(`Setting up masking rules${family === 6 ? ' for IPv6' : ''}`);
        const set: RuleSet = { family, kind: 'masq', rules: masqRules(network, subnet, randomFully) };
        await this.bootstrap(set);
        this.sets.push(set);
      }
      if (this.opts.forwardRules) {
        // flannel logs this but, like us, only adds ACCEPT rules in its own chain; the policy stays as it is.
        log.info(family === 4 ? 'Changing default FORWARD chain policy to ACCEPT' : 'IPv6: Changing default FORWARD chain policy to ACCEPT');
        const set: RuleSet = { family, kind: 'forward', rules: forwardRules(network) };
        try {
          await this.bootstrap(set);
        } catch (e) {
          this.counters.errors++;
          log.error(`Failed to bootstrap IPTables forward rules: ${(e as Error).message}`);
          if (e instanceof IptablesMissingError) continue;
        }
        this.sets.push(set);
      }
    }
    if (this.sets.length > 0) this.resync.start(this.opts.resyncSeconds);
  }

  private async saved(set: RuleSet): Promise<Map<string, SavedTable>> {
    const out = new Map<string, SavedTable>();
    for (const table of new Set(set.rules.map((r) => r.table))) {
      for (const [name, t] of parseSave(await this.runner.save(set.family, table))) out.set(name, t);
    }
    return out;
  }

  private async bootstrap(set: RuleSet): Promise<void> {
    await this.runner.restore(set.family, bootstrapPayload(await this.saved(set), set.rules));
    log.info(`bootstrap done (${set.kind} rules, IPv${set.family})`);
  }

  /** One resync pass; returns how many rule sets it had to re-apply. */
  ensure(): Promise<number> {
    return this.resync.pass();
  }

  /** Stops the resync loop and removes our rules and chains. */
  teardown(): Promise<void> {
    this.resync.stop();
    const sets = this.sets;
    this.sets = [];
    return this.resync.serialize(async () => {
      if (sets.length > 0) log.info('Cleaning-up iptables rules...');
      for (const set of [...sets].reverse()) {
        try {
          const saved = await this.saved(set);
          const payload = teardownPayload(saved, set.rules);
          if (payload === '') continue;
          try {
            await this.runner.restore(set.family, payload);
          } catch {
            // Something else still jumps to our chain: drop our rules, leave the empty chain.
            await this.runner.restore(set.family, teardownPayload(saved, set.rules, false));
          }
        } catch (e) {
          this.counters.errors++;
          log.error(`could not clean up ${set.kind} rules (IPv${set.family}): ${(e as Error).message}`);
        }
      }
    }, undefined);
  }

  stats(): FirewallStats {
    return { ruleSets: this.sets.length, ...this.counters };
  }
}
