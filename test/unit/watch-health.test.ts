// The watch health a store reports, and how `flannelctl status` and /metrics show it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendRegistry } from '../../src/backend/registry.js';
import { formatWatch } from '../../src/cli/status-format.js';
import { Daemon } from '../../src/daemon.js';
import { mustParseIP } from '../../src/ip/index.js';
import { createMetrics } from '../../src/metrics.js';
import { snapshot } from '../../src/status.js';
import { WatchHealth } from '../../src/subnet/watch-health.js';
import { etcdLivenessTimings } from '../../src/subnet/etcd/liveness.js';
import { MemoryManager } from '../helpers/memory-manager.js';

test('WatchHealth: every reason listed from the start, counts, confirmation dropped by a replacement, times as ISO or "never"', () => {
  let now = Date.parse('2026-01-02T03:04:05.000Z');
  const h = new WatchHealth('etcd', ['probe', 'connection'], 15_000, () => now);
  assert.deepEqual(h.snapshot(), {
    store: 'etcd',
    confirmed: false,
    lastEvent: 'never',
    lastRelist: 'never',
    relists: 0,
    livenessSeconds: 15,
    replacements: { probe: 0, connection: 0 },
  });
  h.relisted();
  h.confirm(true);
  now += 1000;
  h.event();
  assert.equal(h.snapshot().confirmed, true);
  h.replaced('probe');
  const s = h.snapshot();
  assert.equal(s.confirmed, false);
  assert.deepEqual(s.replacements, { probe: 1, connection: 0 });
  assert.equal(s.lastRelist, '2026-01-02T03:04:05.000Z');
  assert.equal(s.lastEvent, '2026-01-02T03:04:06.000Z');
  assert.equal(s.relists, 1);
});

test('etcd timings fit the bound and never ping faster than etcd allows', () => {
  const t = etcdLivenessTimings(15_000);
  assert.deepEqual([t.keepaliveTimeMs, t.keepaliveTimeoutMs, t.probeIntervalMs, t.probeTimeoutMs], [5000, 5000, 10_000, 5000]);
  assert.equal(t.probeIntervalMs + t.probeTimeoutMs, 15_000, 'a jam is found within the bound');
  assert.equal(etcdLivenessTimings(6000).keepaliveTimeMs, 5000, "etcd's --grpc-keepalive-min-time is the floor");
  assert.equal(etcdLivenessTimings(60_000).keepaliveTimeMs, 20_000);
});

test('status text line for the watch', () => {
  const now = Date.parse('2026-01-02T03:05:05.000Z');
  const line = formatWatch(
    { store: 'etcd', confirmed: true, lastEvent: '2026-01-02T03:05:02.000Z', lastRelist: 'never', relists: 3, livenessSeconds: 15, replacements: { probe: 2, connection: 0 } },
    now,
  );
  assert.equal(line, 'watch (etcd): confirmed, last event 3s ago, last re-list never (3 lists); replaced: probe 2 (liveness bound 15s)');
  assert.match(formatWatch({ store: 'kube', confirmed: false, lastEvent: 'never', lastRelist: 'never', relists: 0, livenessSeconds: 6, replacements: { idle: 0 } }, now), /NOT CONFIRMED.*replaced: never/);
});

test('/metrics and the status snapshot carry the store\'s watch health', async () => {
  const health = new WatchHealth('etcd', ['probe', 'connection'], 15_000);
  health.relisted();
  health.replaced('connection');
  health.replaced('connection');
  const manager = Object.assign(new MemoryManager(), { watchStatus: () => health.snapshot() });
  const daemon = new Daemon(
    {
      manager,
      backends: new BackendRegistry(),
      selectInterface: () => ({ name: 'eth0', index: 2, mtu: 1500, ifaceAddr: mustParseIP('198.18.0.11'), publicIP: mustParseIP('198.18.0.11') }),
      subnetFileIO: { readPrevious: () => ({}), write: () => {} },
    },
    { subnetFile: '/nonexistent/subnet.env', ipMasq: false, subnetLeaseRenewMargin: 60 },
  );
  assert.deepEqual(snapshot(daemon).watch?.replacements, { probe: 0, connection: 2 });
  const text = await createMetrics(daemon).metrics();
  assert.match(text, /^flannel_watch_replacements_total\{store="etcd",reason="connection"\} 2$/m);
  assert.match(text, /^flannel_watch_replacements_total\{store="etcd",reason="probe"\} 0$/m);
  assert.match(text, /^flannel_watch_confirmed\{store="etcd"\} 0$/m);
  assert.match(text, /^flannel_watch_relists_total\{store="etcd"\} 1$/m);
  assert.match(text, /^flannel_watch_last_event_timestamp_seconds\{store="etcd"\} 0$/m);
  assert.match(text, /^flannel_watch_last_relist_timestamp_seconds\{store="etcd"\} [1-9]\d+/m);
});
