// Bringing flannel.<VNI> / flannel-v6.<VNI> back at once when the kernel deletes them: someone ran
// `ip link del`, or the external interface went away (the kernel deletes a vxlan device with its lower
// device) and came back. flannel v0.27.4 watches RTM_DELLINK for the IPv4 device only, waits for an
// interface with the old name and re-creates the device without its routes, neighbours and FDB entries
// (and in etcd mode with a new MAC the lease does not advertise). Here a link notification about either
// device or the external interface triggers the backend's full repair (vxlan-kernel.ts: the device with
// its old MAC, address, routes, neighbours, FDB), retried with flannel's backoff (1 s doubling to 30 s)
// while it cannot succeed yet, e.g. while the external interface is missing.
import type { IPAddr } from '../../ip/index.js';
import { formatIP, ipEqual } from '../../ip/index.js';
import { preferredAddrs } from '../../ip/preference.js';
import { log } from '../../log.js';
import type { LinkEvent, LinkWatch } from '../../netlink/index.js';
import type { VxlanOps } from '../kernel-ops.js';
import type { ExternalInterface } from '../types.js';
import type { VxlanDev } from './vxlan-peers.js';

/** Subscribes to link notifications (netlink/watch.ts in production). */
export type LinkWatchFn = (onEvent: (e: LinkEvent) => void) => LinkWatch;

/** Whether a notification may mean one of our devices or the external interface is gone or back. */
export function concernsDevices(e: LinkEvent, devs: ReadonlyArray<VxlanDev | undefined>, ext: ExternalInterface): boolean {
  if (e.kind === 'resync') return true;
  const { name, index } = e.link;
  if (name === ext.name || index === ext.index) return e.kind === 'del' || index !== ext.index;
  // Our own re-creation shows up as RTM_NEWLINK with the index we recorded: not news.
  return devs.some((d) => d !== undefined && (name === d.name || index === d.index) && (e.kind === 'del' || index !== d.index));
}

/**
 * The external interface as it is now: if it was re-created (a new index), the vxlan specs follow it,
 * keeping their local address when the interface still has it, else taking its preferred address (the
 * lease then advertises the old one: said once, loudly). Throws when the interface or an address is missing.
 */
export function followUnderlay(ops: VxlanOps, ext: ExternalInterface, devs: ReadonlyArray<VxlanDev | undefined>): void {
  const link = ops.findLink(ext.name);
  if (!link) throw new Error(`external interface ${ext.name} not found`);
  if (link.index === ext.index) return;
  log.info(`external interface ${ext.name} is back (index ${ext.index} -> ${link.index}); vxlan devices follow it`);
  for (const dev of devs) {
    const spec = dev?.spec;
    if (!spec) continue;
    const family = spec.local?.family ?? 4;
    const addrs = ops.listAddrs(family, link.index);
    let local: IPAddr | undefined = spec.local && addrs.some((a) => ipEqual(a.addr, spec.local!)) ? spec.local : undefined;
    if (!local) {
      local = preferredAddrs(addrs, family)[0]?.addr;
      if (!local) throw new Error(`external interface ${ext.name} has no IPv${family} address yet`);
      log.warning(`external interface ${ext.name} came back without ${spec.local ? formatIP(spec.local) : 'its address'}: ${dev.name} now uses ${formatIP(local)}, but the lease still advertises the old address; restart flanneld to publish the new one`);
      spec.local = local;
    }
    spec.link = link.index;
  }
  ext.index = link.index;
}

export interface RecoveryOptions {
  /** Lets a burst of notifications (device and interface deleted together) settle into one repair. */
  settleMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Runs `repair` (true when every device is healthy again) after relevant notifications, with backoff. */
export class DeviceRecovery {
  private watch?: LinkWatch;
  private timer?: NodeJS.Timeout;
  private backoffMs: number;
  private closed = false;
  readonly counters = { notifications: 0, repairs: 0, retries: 0 };

  constructor(
    private readonly relevant: (e: LinkEvent) => boolean,
    private readonly repair: () => Promise<boolean>,
    private readonly opts: RecoveryOptions = {},
  ) {
    this.backoffMs = opts.initialBackoffMs ?? 1000;
  }

  start(watchLinks: LinkWatchFn): void {
    try {
      this.watch = watchLinks((e) => {
        if (this.closed || !this.relevant(e)) return;
        this.counters.notifications++;
        if (e.kind !== 'resync') log.info(`Interface ${e.link.name} ${e.kind === 'del' ? 'deleted' : 'changed'}; checking the vxlan devices`);
        this.schedule(this.opts.settleMs ?? 100, true);
      });
    } catch (e) {
      // The periodic reconcile still repairs, only later.
      log.warning(`cannot watch link changes (${(e as Error).message}); a deleted vxlan device is re-created by the periodic reconcile`);
    }
  }

  private schedule(ms: number, fresh: boolean): void {
    if (fresh) this.backoffMs = this.opts.initialBackoffMs ?? 1000;
    if (this.timer) return;
    this.timer = setTimeout(() => void this.run(), ms);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    this.timer = undefined;
    if (this.closed) return;
    this.counters.repairs++;
    if (await this.repair()) return;
    this.counters.retries++;
    const wait = this.backoffMs;
    this.backoffMs = Math.min(wait * 2, this.opts.maxBackoffMs ?? 30_000);
    log.info(`vxlan devices not restored yet; retrying in ${wait / 1000}s`);
    this.schedule(wait, false);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.watch?.close();
  }
}
