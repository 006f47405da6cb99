import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeRates, formatLastSeen, formatStatus, humanBytes } from '../../src/cli/status-format.js';
import { lastSeenOf, snapshot, type StatusSnapshot } from '../../src/status.js';
import type { Daemon } from '../../src/daemon.js';
import type { NetworkStats } from '../../src/backend/types.js';
import { emptyEngineStats } from '../helpers/fake-plane.js';

const snap = (txPackets: number, txBytes: number): StatusSnapshot => ({
  version: '0.1.0',
  pid: 42,
  uptimeSeconds: 5,
  backend: 'udp',
  device: 'flannel0',
  mtu: 1472,
  externalInterface: { name: 'eth0', mtu: 1500, publicIP: '198.18.0.11' },
  lease: { subnet: '198.19.5.0/24', expiration: '2026-11-26T00:00:00.000Z' },
  peers: [{ subnet: '198.19.6.0/24', publicIP: '198.18.0.12', backendType: 'udp', expiration: 'x', tx: { packets: txPackets, bytes: txBytes }, rx: { packets: 1, bytes: 84 } }],
  totals: { tx: { packets: txPackets, bytes: txBytes }, rx: { packets: 1, bytes: 84 } },
  drops: { no_route: 3, malformed: 0 },
  routes: { expected: 1, installed: 1 },
  daemon: { leaseEvents: 1, renewals: 0, renewErrors: 0, reconcileRepairs: 0, reconcileErrors: 0 },
});

test('status text shows lease, peers with counters, non-zero drops and route agreement', () => {
  const text = formatStatus(snap(10, 2048));
  assert.match(text, /backend udp, device flannel0, MTU 1472/);
  assert.match(text, /lease 198\.19\.5\.0\/24/);
  assert.match(text, /198\.19\.6\.0\/24 +198\.18\.0\.12 +10 +2\.0 KiB +1 +84 B/);
  assert.match(text, /drops: no_route=3$/m);
  assert.doesNotMatch(text, /malformed/);
  assert.match(text, /1 installed \/ 1 expected$/m);
  assert.match(formatStatus({ ...snap(0, 0), routes: { expected: 2, installed: 1 } }), /MISMATCH/);
});

test('rates come from the difference of two snapshots', () => {
  const r = computeRates(snap(10, 1000), snap(110, 126_000), 2);
  const p = r.bySubnet.get('198.19.6.0/24')!;
  assert.equal(p.txPps, 50);
  assert.equal(p.txBps, 500_000);
  assert.equal(p.rxPps, 0);
  assert.match(formatStatus(snap(110, 126_000), r), /500\.0 kbit\/s 50 pps/);
});

test('humanBytes', () => {
  assert.equal(humanBytes(0), '0 B');
  assert.equal(humanBytes(1536), '1.5 KiB');
  assert.equal(humanBytes(5 * 1024 ** 3), '5.0 GiB');
});

test('the snapshot takes the engine counters as the backend reports them, and none from a kernel backend', () => {
  const engine = emptyEngineStats();
  engine.drops.no_route = 1;
  engine.peers = [{ subnet: '198.19.6.0/24', publicIP: '198.18.0.16', port: 8285, tx: { packets: 1, bytes: 2 }, rx: { packets: 0, bytes: 0 }, lastRxMs: 0 }];
  engine.offloads.udpGso = true;
  const daemonWith = (stats: NetworkStats) => ({ network: { mtu: 1472, stats: () => stats }, watchStatus: () => undefined, peers: new Map(), counters: { leaseEvents: 0, renewals: 0, renewErrors: 0, reconcileRepairs: 0, reconcileErrors: 0 } }) as unknown as Daemon;
  const s = snapshot(daemonWith({ backend: 'udp', engine }));
  assert.equal(s.drops?.no_route, 1);
  assert.deepEqual(s.routes, { expected: 0, installed: 1 });
  assert.equal(s.offloads?.udpGso, true);
  const k = snapshot(daemonWith({ backend: 'vxlan' }));
  assert.equal(k.drops, undefined);
  assert.equal(k.routes, undefined);
});

test('last seen: from the engine entries (latest of v4/v6), as ISO or "never"; shown as an age in the table', () => {
  const t = (ms: number) => ({ subnet: 'x', tx: { packets: 0, bytes: 0 }, rx: { packets: 0, bytes: 0 }, lastRxMs: ms });
  assert.equal(lastSeenOf([]), 'never');
  assert.equal(lastSeenOf([t(0), t(0)]), 'never');
  assert.equal(lastSeenOf([t(1_764_000_000_000), t(1_764_000_005_000)]), '2025-11-24T16:00:05.000Z');
  const now = Date.parse('2025-11-24T16:00:05.000Z');
  assert.equal(formatLastSeen('never', now), 'never');
  assert.equal(formatLastSeen(undefined, now), '-');
  assert.equal(formatLastSeen('2025-11-24T16:00:02.000Z', now), '3s ago');
  assert.equal(formatLastSeen('2025-11-24T15:50:05.000Z', now), '10m ago');
  assert.equal(formatLastSeen('2025-11-24T10:00:05.000Z', now), '6h ago');
  const s = snap(1, 1);
  s.peers.push({ ...s.peers[0]!, subnet: '198.19.7.0/24', publicIP: '198.18.0.13', lastSeen: 'never' });
  s.peers[0]!.lastSeen = '2025-11-24T16:00:03.000Z';
  s.capture = { active: true, lost: 4 };
  const text = formatStatus(s, undefined, now);
  assert.match(text, /PEER +PUBLIC IP +TX PKTS +TX BYTES +RX PKTS +RX BYTES +LAST SEEN$/m);
  assert.match(text, /^198\.19\.6\.0\/24 .* 2s ago$/m);
  assert.match(text, /^198\.19\.7\.0\/24 .* never$/m);
  assert.match(text, /^capture: running/m);
  assert.match(text, /^capture records lost to a full buffer: 4$/m);
});
