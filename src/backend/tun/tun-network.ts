// What every TUN backend does the same way: the device (MTU, the lease's network address, up, a route
// per overlay network), the engine's lifecycle, the peer set kept from lease events and rebuilt by
// each reconcile pass, the capture tap and the counters. A backend says only how its peers become
// engine rows (udp: one row per subnet; the userspace VTEP: rows with VTEP MACs, or direct routes).
import type { ExternalInterface, NetworkStats, RunningNetwork } from '../types.js';
import type { NetworkConfig } from '../../config/types.js';
import { log } from '../../log.js';
import { leaseKey } from '../../subnet/lease.js';
import type { Lease, LeaseEvent } from '../../subnet/types.js';
import type { CaptureSource } from '../../capture/session.js';
import type { LinkOps, TunDataPlane } from './data-plane.js';

export abstract class TunNetwork implements RunningNetwork {
  /** Peer leases by key, as the events and the last reconcile pass left them. */
  protected readonly peers = new Map<string, Lease>();
  protected closed = false;

  constructor(
    protected readonly config: NetworkConfig,
    protected readonly ext: ExternalInterface,
    protected readonly lease: Lease,
    protected readonly plane: TunDataPlane,
    protected readonly links: LinkOps,
    readonly mtu: number,
  ) {}

  /** What the startup line says after "up" (device, MTU, port, ...); the offload report follows it. */
  protected abstract describeUp(): string;

  /** Pushes the current peer set down (and whatever else the backend keeps per peer). */
  protected abstract apply(fromReconcile: boolean): void;

  /** The backend's own fields for status; the engine's counters are added under `engine`. */
  protected abstract ownStats(): NetworkStats;

  /** A hook per lease event, before the peer set changes (logging, per-peer warnings). */
  protected noteEvent(_ev: LeaseEvent): void {}

  /** A hook after a reconcile pass pushed the table; returns the repairs of the whole pass. */
  protected afterReconcile(repairs: number): number {
    return repairs;
  }

  /** Configures the TUN: MTU, lease network address (/32, /128), up, a route for each overlay network. */
  bringUp(): void {
    const idx = this.plane.tunIndex;
    this.links.setMtu(idx, this.mtu);
    this.ensureDevice();
    this.links.setUp(idx);
    this.ensureRoutes();
    this.plane.start();
    log.info(`${this.describeUp()}${this.plane.offloadReport ? ', ' + this.plane.offloadReport() : ''}`);
  }

  private ensureDevice(): number {
    let repairs = 0;
    const idx = this.plane.tunIndex;
    if (this.lease.subnet && this.links.ensureAddr(idx, { family: 4, value: this.lease.subnet.value }, 32)) repairs++;
    if (this.lease.ipv6Subnet && this.links.ensureAddr(idx, { family: 6, value: this.lease.ipv6Subnet.value }, 128)) repairs++;
    return repairs;
  }

  private ensureRoutes(): number {
    let repairs = 0;
    const idx = this.plane.tunIndex;
    if (this.config.enableIPv4 && this.config.network && this.links.ensureRoute(idx, this.config.network)) repairs++;
    if (this.config.enableIPv6 && this.config.ipv6Network && this.links.ensureRoute(idx, this.config.ipv6Network)) repairs++;
    return repairs;
  }

  async handle(events: LeaseEvent[]): Promise<void> {
    if (this.closed) return;
    for (const ev of events) {
      this.noteEvent(ev);
      const key = leaseKey(ev.lease);
      if (ev.type === 'added') this.peers.set(key, ev.lease);
      else this.peers.delete(key);
    }
    this.apply(false);
  }

  /**
   * The address and routes come back if someone deleted them; the table is rebuilt from the full lease
   * set, which drops peers whose removal event was missed.
   */
  async reconcile(leases: Lease[]): Promise<number> {
    if (this.closed) return 0;
    const repairs = this.ensureDevice() + this.ensureRoutes();
    this.peers.clear();
    for (const l of leases) this.peers.set(leaseKey(l), l);
    this.apply(true);
    return this.afterReconcile(repairs);
  }

  /** The engine's capture tap (`flannelctl capture` shows inner packets, drops with their reasons). */
  get capture(): CaptureSource | undefined {
    return this.plane.capture;
  }

  stats(): NetworkStats {
    return { ...this.ownStats(), engine: this.plane.stats() };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Closing the TUN fd removes the non-persistent device and with it its address and routes.
    this.plane.close();
  }
}
