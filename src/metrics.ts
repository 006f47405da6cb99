// Prometheus /metrics (prom-client), collected at scrape time from the daemon's state and the
// engine's native counters; nothing is updated on the packet path.
import { Counter, Gauge, Registry } from 'prom-client';
import type { Daemon } from './daemon.js';
import { snapshot, type StatusSnapshot } from './status.js';
import { registerWireguardMetrics } from './metrics-wireguard.js';

export function createMetrics(d: Daemon): Registry {
  const registry = new Registry();
  // One snapshot per scrape, shared by every collector of that scrape.
  let cached: { at: number; snap: StatusSnapshot } | undefined;
  const snap = (): StatusSnapshot => {
    const now = Date.now();
    if (!cached || now - cached.at > 100) cached = { at: now, snap: snapshot(d) };
    return cached.snap;
  };

  new Gauge({
    name: 'flannel_lease_info',
    help: 'The lease this node holds (1), with its subnets and backend as labels.',
    labelNames: ['subnet', 'ipv6_subnet', 'backend'],
    registers: [registry],
    collect() {
      this.reset();
      const s = snap();
      if (s.lease) this.set({ subnet: s.lease.subnet ?? '', ipv6_subnet: s.lease.ipv6Subnet ?? '', backend: s.backend ?? '' }, 1);
    },
  });
  /** A gauge without labels, set from the snapshot at each scrape (undefined: left as it was). */
  const snapshotGauge = (name: string, help: string, value: (s: StatusSnapshot) => number | undefined): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const v = value(snap());
        if (v !== undefined) this.set(v);
      },
    });
  };
  snapshotGauge('flannel_lease_expiration_timestamp_seconds', 'When this node\'s lease expires unless renewed (Unix time).', (s) => s.lease && Date.parse(s.lease.expiration) / 1000);
  snapshotGauge('flannel_leases', 'Leases of other nodes known to this daemon.', (s) => s.peers.length);
  const daemonCounter = (name: string, help: string, key: keyof Daemon['counters']): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(snap().daemon[key]);
      },
    });
  };
  daemonCounter('flannel_lease_renewals_total', 'Successful lease renewals.', 'renewals');
  daemonCounter('flannel_lease_renewal_errors_total', 'Failed lease renewal attempts (retried after 1 min).', 'renewErrors');
  daemonCounter('flannel_lease_events_total', 'Lease added/removed events for other nodes.', 'leaseEvents');
  daemonCounter('flannel_reconcile_repairs_total', 'Missing routes/addresses re-added by the reconcile pass.', 'reconcileRepairs');
  daemonCounter('flannel_reconcile_errors_total', 'Reconcile passes that failed.', 'reconcileErrors');

  const trafficCounter = (name: string, help: string, field: 'packets' | 'bytes'): void => {
    new Counter({
      name,
      help,
      labelNames: ['direction', 'peer'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of snap().peers) {
          const peer = p.subnet ?? p.ipv6Subnet ?? '';
          if (p.tx) this.inc({ direction: 'tx', peer }, p.tx[field]);
          if (p.rx) this.inc({ direction: 'rx', peer }, p.rx[field]);
        }
      },
    });
  };
  trafficCounter('flannel_dataplane_packets_total', 'Packets moved by the userspace data plane, by direction and peer subnet.', 'packets');
  trafficCounter('flannel_dataplane_bytes_total', 'Inner-packet bytes moved by the userspace data plane, by direction and peer subnet.', 'bytes');
  /** A counter with one label, its values per label value read from the snapshot (none: absent). */
  const labelledCounter = (name: string, help: string, label: string, values: (s: StatusSnapshot) => Record<string, number> | undefined): void => {
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        for (const [value, n] of Object.entries(values(snap()) ?? {})) this.inc({ [label]: value }, n);
      },
    });
  };
  labelledCounter('flannel_dataplane_drops_total', 'Packets dropped by the userspace data plane, by reason.', 'reason', (s) => s.drops);
  new Gauge({
    name: 'flannel_dataplane_offload_enabled',
    help: 'Offloads the data plane uses (1) or not (0).',
    labelNames: ['offload'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [offload, on] of Object.entries(snap().offloads ?? {})) this.set({ offload }, on ? 1 : 0);
    },
  });
  // Without an engine there is no capture: the gauge stays at its initial 0.
  snapshotGauge('flannel_dataplane_capture_active', 'Whether a flannelctl capture is running in the data plane (1) or not (0).', ({ capture: c }) => c && (c.active ? 1 : 0));
  new Counter({
    name: 'flannel_dataplane_capture_lost_total',
    help: 'Capture records the data plane could not keep because the capture buffer was full.',
    registers: [registry],
    collect() {
      this.reset();
      const c = snap().capture;
      if (c) this.inc(c.lost);
    },
  });
  labelledCounter(
    'flannel_dataplane_reply_poll_total',
    'Reply polling after small sends: windows answered (hit), run out (miss), or not polled (skipped: misses had shrunk the window, or a stream was arriving and the send was its ACKs).',
    'result',
    ({ replyPoll: r }) => r && { hit: r.hits, miss: r.misses, skipped: r.skipped },
  );
  snapshotGauge(
    'flannel_dataplane_threads',
    'Data-plane threads carrying packets: 1 (both directions on one) or 2 (while both directions are busy).',
    (s) => s.threads?.current,
  );
  labelledCounter(
    'flannel_dataplane_thread_switches_total',
    'Automatic thread mode: switches to two data-plane threads (split) and back to one (merge).',
    'to',
    ({ threads: t }) => t && { split: t.splits, merge: t.merges },
  );
  new Gauge({
    name: 'flannel_peer_last_seen_timestamp_seconds',
    help: 'When the data plane last accepted a packet from the peer (Unix time); absent until the first one.',
    labelNames: ['peer'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of snap().peers) {
        const at = p.lastSeen ? Date.parse(p.lastSeen) : NaN;
        if (!Number.isNaN(at)) this.set({ peer: p.subnet ?? p.ipv6Subnet ?? '' }, at / 1000);
      }
    },
  });
  new Gauge({
    name: 'flannel_dataplane_routes',
    help: 'Peer routes in the data plane (installed) and the lease subnets that ask for one (expected).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      const r = snap().routes;
      if (r) {
        this.set({ state: 'installed' }, r.installed);
        this.set({ state: 'expected' }, r.expected);
      }
    },
  });
  registerWatchMetrics(registry, snap);
  registerWireguardMetrics(registry, snap);
  return registry;
}

/** The lease store's watch (issue 29): confirmed or not, replacements by reason, re-lists, last event and re-list. */
function registerWatchMetrics(registry: Registry, snap: () => StatusSnapshot): void {
  const at = (iso: string): number => (iso === 'never' ? 0 : Date.parse(iso) / 1000);
  new Gauge({
    name: 'flannel_watch_confirmed',
    help: 'Whether the lease store watch is confirmed live (1) or being replaced or re-listed (0).',
    labelNames: ['store'],
    registers: [registry],
    collect() {
      this.reset();
      const w = snap().watch;
      if (w) this.set({ store: w.store }, w.confirmed ? 1 : 0);
    },
  });
  new Counter({
    name: 'flannel_watch_replacements_total',
    help: 'Lease store watches given up and replaced, by reason (etcd: probe, connection, stream-ended, library-error, relist-failed, cancelled; kube: no-headers, idle, ended, error, gone).',
    labelNames: ['store', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      const w = snap().watch;
      for (const [reason, n] of Object.entries(w?.replacements ?? {})) this.inc({ store: w!.store, reason }, n);
    },
  });
  new Counter({
    name: 'flannel_watch_relists_total',
    help: 'Complete lists of the lease store (first list, periodic re-lists, re-lists after a failure).',
    labelNames: ['store'],
    registers: [registry],
    collect() {
      this.reset();
      const w = snap().watch;
      if (w) this.inc({ store: w.store }, w.relists);
    },
  });
  for (const [name, help, field] of [
    ['flannel_watch_last_event_timestamp_seconds', 'When the lease store watch last delivered something (Unix time; 0: never).', 'lastEvent'],
    ['flannel_watch_last_relist_timestamp_seconds', 'When the lease store was last listed in full (Unix time; 0: never).', 'lastRelist'],
  ] as const) {
    new Gauge({
      name,
      help,
      labelNames: ['store'],
      registers: [registry],
      collect() {
        this.reset();
        const w = snap().watch;
        if (w) this.set({ store: w.store }, at(w[field]));
      },
    });
  }
}
