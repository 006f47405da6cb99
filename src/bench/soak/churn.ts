// The soak's lease churn: fake peer leases (198.19.128.0/24 upwards; their public addresses carry no
// traffic) added to and removed from etcd every couple of seconds, each on a 1 h etcd lease as flannel
// writes them, so that every fault finds the store changing under the nodes.
import type { Lab } from '../../lab/lab.js';
import { LAB_ETCD_PREFIX } from '../../lab/lab-etcd.js';
import { sleep } from '../../util/sleep.js';

export const CHURN_MIN = 5;
export const CHURN_MAX = 20;

const subnetOf = (i: number): string => `198.19.${128 + i}.0/24`;
const keyOf = (i: number): string => `${LAB_ETCD_PREFIX}/subnets/198.19.${128 + i}.0-24`;
const publicIPOf = (i: number): string => `198.18.1.${100 + i}`;

export class LeaseChurn {
  /** Fake leases written by the churn: index -> subnet. */
  private readonly live = new Map<number, string>();
  private stopped = false;
  private paused = 0;
  private etcdUp = true;
  private loop?: Promise<void>;
  writes = 0;
  failures = 0;

  constructor(
    private readonly lab: Lab,
    /** Subnets the real nodes hold (CIDR text): never written over. */
    private readonly reserved: ReadonlySet<string>,
    private readonly periodMs = 2000,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  setEtcdAvailable(up: boolean): void {
    this.etcdUp = up;
  }

  /** Pauses the churn until the returned function is called (a checkpoint compares a still store). */
  pause(): () => void {
    this.paused++;
    let done = false;
    return () => {
      if (!done) this.paused--;
      done = true;
    };
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await sleep(this.periodMs);
      if (this.stopped || this.paused > 0 || !this.etcdUp) continue;
      const add = this.live.size < CHURN_MIN || (this.live.size < CHURN_MAX && Math.random() < 0.5);
      try {
        if (add) {
          let i = Math.floor(Math.random() * 64);
          while (this.live.has(i) || this.reserved.has(subnetOf(i))) i = (i + 1) % 64;
          await this.lab.etcdPut(keyOf(i), JSON.stringify({ PublicIP: publicIPOf(i), PublicIPv6: null, BackendType: 'udp' }), 3600);
          this.live.set(i, subnetOf(i));
        } else {
          const ids = [...this.live.keys()];
          const i = ids[Math.floor(Math.random() * ids.length)]!;
          await this.lab.etcdDelete(keyOf(i));
          this.live.delete(i);
        }
        this.writes++;
      } catch {
        // etcd went away under the write; the checkpoints compare with etcd itself, not with this map.
        this.failures++;
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
