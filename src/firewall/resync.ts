// The -iptables-resync loop both traffic modes share: every period each installed rule set is checked
// and set up again when something is missing or changed; passes (and the mode's own work, e.g. its
// teardown) are serialised, so two of our iptables-restore or nft runs never overlap.
import { log } from '../log.js';

export interface ResyncCounters {
  checks: number;
  reapplied: number;
  errors: number;
}

export interface ResyncTarget<T> {
  /** "iptables" or "nftables", for the log lines. */
  readonly what: string;
  /** The line logged before a repair (flannel's wording for iptables), followed by the problems. */
  readonly announce: string;
  /** What is installed now (read at each pass). */
  items(): readonly T[];
  /** Why `item` differs from what was installed (empty: fine). */
  problems(item: T): Promise<string[]>;
  /** Sets `item` up again. */
  repair(item: T): Promise<void>;
}

export class ResyncLoop<T> {
  readonly counters: ResyncCounters = { checks: 0, reapplied: 0, errors: 0 };
  private timer?: NodeJS.Timeout;
  private busy: Promise<unknown> = Promise.resolve();

  constructor(private readonly target: ResyncTarget<T>) {}

  start(seconds: number): void {
    this.timer = setInterval(() => void this.pass(), seconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Runs `work` after every earlier pass or piece of work has finished. */
  serialize<R>(work: () => Promise<R>, onError: R): Promise<R> {
    const run = this.busy.then(work);
    this.busy = run.catch(() => onError);
    return run;
  }

  /** One resync pass; returns how many items it had to set up again. */
  pass(): Promise<number> {
    return this.serialize(async () => {
      let reapplied = 0;
      for (const item of this.target.items()) {
        this.counters.checks++;
        try {
          const problems = await this.target.problems(item);
          if (problems.length === 0) continue;
          log.info(`${this.target.announce} (${problems.join('; ')})`);
          await this.target.repair(item);
          reapplied++;
          this.counters.reapplied++;
        } catch (e) {
          this.counters.errors++;
          log.error(`Failed to ensure ${this.target.what} rules: ${(e as Error).message}`);
        }
      }
      return reapplied;
    }, 0);
  }
}
