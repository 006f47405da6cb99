// flannel's kube lease-event channel (EVENT_QUEUE_DEPTH deep, 5000 by default) between the node
// informer and the backend. The node reflector cannot be made to wait, so events are never dropped:
// at most `depth` are handed to the consumer at once, the next batch only when it has finished the
// previous one, and a backlog beyond `depth` is reported once, as flannel logs "Channel buffer full,
// add event asynchronously" and requeues instead of blocking.
import { log } from '../../log.js';
import type { LeaseEvent } from '../types.js';

export type LeaseEventSink = (events: LeaseEvent[]) => void | Promise<void>;

export class LeaseEventQueue {
  private readonly waiting: LeaseEvent[] = [];
  private busy = false;
  private full = false;
  private closed = false;
  readonly counters = { delivered: 0, batches: 0, overflows: 0 };

  constructor(
    private readonly depth: number,
    private readonly sink: LeaseEventSink,
  ) {}

  push(events: readonly LeaseEvent[]): void {
    if (this.closed || events.length === 0) return;
    this.waiting.push(...events);
    if (this.waiting.length > this.depth && !this.full) {
      this.full = true;
      this.counters.overflows++;
      log.info(`Channel buffer full, add event asynchronously (${this.waiting.length} lease events waiting, EVENT_QUEUE_DEPTH ${this.depth})`);
    }
    void this.pump();
  }

  /** Events not yet handed to the consumer. */
  get backlog(): number {
    return this.waiting.length;
  }

  close(): void {
    this.closed = true;
    this.waiting.length = 0;
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (!this.closed && this.waiting.length > 0) {
        const batch = this.waiting.splice(0, this.depth);
        if (this.waiting.length <= this.depth) this.full = false;
        this.counters.batches++;
        this.counters.delivered += batch.length;
        try {
          await this.sink(batch);
        } catch (e) {
          log.error(`lease event handling failed: ${(e as Error).message}`);
        }
      }
    } finally {
      this.busy = false;
    }
  }
}
