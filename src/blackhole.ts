// -ip-blackhole-route (flannel v0.27.1): a blackhole route for the node's own subnet, IPv4 and IPv6,
// so traffic to a pod address that no pod holds is dropped here instead of following the default route
// out of the node (for setups without flannel's bridge, e.g. Canal). Added if missing on every
// -iptables-resync tick and never removed, like flannel's; unlike flannel's, also right at start
// (flannel's first add waits one period). Through our netlink, as flannel's is through its.
import type { NetworkConfig } from './config/types.js';
import { formatCIDR, netEqual, type IPNet } from './ip/index.js';
import { log } from './log.js';
import { isExists, nl, type Netlink } from './netlink/index.js';
import type { Lease } from './subnet/types.js';

export type BlackholeOps = Pick<Netlink, 'listRoutes' | 'addRoute'>;

/** What the daemon needs: start with the lease, stop on shutdown (the routes stay). */
export interface NodeRoutes {
  start(config: NetworkConfig, lease: Lease): void;
  stop(): void;
}

export class BlackholeRoutes implements NodeRoutes {
  private subnets: IPNet[] = [];
  private timer?: NodeJS.Timeout;
  /** The last failure per subnet, so a persisting one is logged once, not every few seconds. */
  private readonly failing = new Map<string, string>();
  readonly counters = { added: 0, errors: 0 };

  constructor(
    private readonly ops: BlackholeOps,
    private readonly periodSeconds: number,
  ) {}

  start(config: NetworkConfig, lease: Lease): void {
    this.subnets = [config.enableIPv4 ? lease.subnet : undefined, config.enableIPv6 ? lease.ipv6Subnet : undefined].filter((s): s is IPNet => s !== undefined);
    if (this.subnets.length === 0) return;
    this.ensure();
    this.timer = setInterval(() => this.ensure(), this.periodSeconds * 1000);
    this.timer.unref();
  }

  /** One pass: adds each missing blackhole route; returns how many it added. */
  ensure(): number {
    let added = 0;
    for (const dst of this.subnets) {
      const key = formatCIDR(dst);
      try {
        // flannel's RouteListFiltered(Dst, Type) on the main table: any blackhole for the subnet will do.
        if (this.ops.listRoutes(dst.family).some((r) => r.type === nl.RTN_BLACKHOLE && netEqual(r.dst, dst))) {
          this.failing.delete(key);
          continue;
        }
        this.ops.addRoute({ dst, type: nl.RTN_BLACKHOLE, scope: nl.RT_SCOPE_UNIVERSE });
        added++;
        this.counters.added++;
        this.failing.delete(key);
        log.info(`Added blackhole route for ${key}`);
      } catch (e) {
        this.counters.errors++;
        const msg = (e as Error).message;
        if (this.failing.get(key) === msg) continue;
        this.failing.set(key, msg);
        const hint = isExists(e) ? ' (another route for the whole subnet exists at the same metric, e.g. the CNI bridge address; -ip-blackhole-route is for setups without it)' : '';
        log.error(`Failed to setup blackhole route for ${key}: ${msg}${hint}; retrying every ${this.periodSeconds}s`);
      }
    }
    return added;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
