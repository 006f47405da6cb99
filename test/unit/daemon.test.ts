import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendRegistry } from '../../src/backend/registry.js';
import type { Backend, RunningNetwork } from '../../src/backend/types.js';
import { Daemon } from '../../src/daemon.js';
import type { SubnetEnvInput } from '../../src/subnet/subnetenv.js';
import { formatCIDR, mustParseIP, parseCIDR } from '../../src/ip/index.js';
import type { Lease, LeaseEvent } from '../../src/subnet/types.js';
import { setLogSink } from '../../src/log.js';
import { MemoryManager } from '../helpers/memory-manager.js';

class RecordingNetwork implements RunningNetwork {
  readonly mtu = 1472;
  events: LeaseEvent[] = [];
  reconciled: Lease[][] = [];
  closed = false;
  async handle(events: LeaseEvent[]): Promise<void> {
    this.events.push(...events);
  }
  async reconcile(leases: Lease[]): Promise<number> {
    this.reconciled.push(leases);
    return 1;
  }
  stats(): Record<string, unknown> {
    return {};
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

function setup(manager = new MemoryManager()) {
  const net = new RecordingNetwork();
  const written: Array<{ path: string; data: SubnetEnvInput }> = [];
  const backend: Backend = { type: 'fake', backendData: () => undefined, backendV6Data: () => undefined, start: async () => net };
  const daemon = new Daemon(
    {
      manager,
      backends: new BackendRegistry().register('fake', async () => backend),
      selectInterface: () => ({ name: 'eth0', index: 2, mtu: 1500, ifaceAddr: mustParseIP('198.18.0.11'), publicIP: mustParseIP('198.18.0.11') }),
      subnetFileIO: {
        readPrevious: () => ({ subnet: parseCIDR('198.19.77.0/24') }),
        write: (path, data) => written.push({ path, data }),
      },
    },
    { subnetFile: '/run/flannel/subnet.env', ipMasq: false, subnetLeaseRenewMargin: 60, reconcileSeconds: 3600, configRetrySeconds: 0.01 },
  );
  return { daemon, net, written, manager };
}

const peer = (third: number): Lease => ({
  subnet: parseCIDR(`198.19.${third}.0/24`)!,
  attrs: { publicIP: mustParseIP(`198.18.0.${third}`), backendType: 'fake' },
  expiration: new Date(Date.now() + 3600_000),
});

const quiet = () => setLogSink(() => {});

test('start: previous subnet asked again, subnet.env written with backend MTU, snapshot applied without our own lease', async () => {
  const prev = quiet();
  const { daemon, net, written, manager } = setup();
  manager.put(peer(5));
  try {
    await daemon.start();
    assert.equal(formatCIDR(daemon.lease!.subnet!), '198.19.77.0/24');
    assert.equal(written.length, 1);
    assert.equal(written[0]!.data.mtu, 1472);
    assert.equal(formatCIDR(written[0]!.data.subnet!), '198.19.77.0/24');
    assert.equal(formatCIDR(written[0]!.data.config.network!), '198.19.0.0/16');
    assert.deepEqual(net.events.map((e) => `${e.type} ${formatCIDR(e.lease.subnet!)}`), ['added 198.19.5.0/24']);
    assert.equal(manager.leases.get('198.19.77.0/24')?.attrs.backendType, 'fake');
  } finally {
    await daemon.stop();
    setLogSink(prev);
  }
});

test('events from the store reach the backend in order; our own lease is filtered', async () => {
  const prev = quiet();
  const { daemon, net, manager } = setup();
  try {
    await daemon.start();
    manager.put(peer(6));
    manager.put({ ...peer(77), subnet: parseCIDR('198.19.77.0/24')! });
    manager.remove('198.19.6.0/24');
    await daemon.reconcileNow(); // drains the queue
    assert.deepEqual(net.events.map((e) => `${e.type} ${formatCIDR(e.lease.subnet!)}`), ['added 198.19.6.0/24', 'removed 198.19.6.0/24']);
    assert.equal(daemon.peers.size, 0);
  } finally {
    await daemon.stop();
    setLogSink(prev);
  }
});

test('reconcile hands the backend the full current peer set and counts repairs', async () => {
  const prev = quiet();
  const { daemon, net, manager } = setup();
  try {
    await daemon.start();
    const atStart = daemon.counters.reconcileRepairs;
    manager.put(peer(8));
    manager.put(peer(9));
    assert.equal(await daemon.reconcileNow(), 1);
    const last = net.reconciled.at(-1)!;
    assert.deepEqual(last.map((l) => formatCIDR(l.subnet!)).sort(), ['198.19.8.0/24', '198.19.9.0/24']);
    assert.equal(daemon.counters.reconcileRepairs, atStart + 1);
  } finally {
    await daemon.stop();
    setLogSink(prev);
  }
});

test('start reconciles once right after the snapshot, before subnet.env: leftovers of a restart go at once (#2554)', async () => {
  const prev = quiet();
  const m = new MemoryManager();
  m.put(peer(5));
  const { daemon, net, written } = setup(m);
  let writtenAtReconcile = -1;
  const orig = net.reconcile.bind(net);
  net.reconcile = async (leases) => {
    writtenAtReconcile = written.length;
    return orig(leases);
  };
  try {
    await daemon.start();
    assert.equal(net.reconciled.length, 1, 'one pass during start (the periodic one is an hour away here)');
    assert.deepEqual(net.reconciled[0]!.map((l) => formatCIDR(l.subnet!)), ['198.19.5.0/24']);
    assert.equal(writtenAtReconcile, 0, 'before subnet.env');
    assert.equal(written.length, 1);
  } finally {
    await daemon.stop();
    setLogSink(prev);
  }
});

test('config fetch is retried until the store answers', async () => {
  const prev = quiet();
  const m = new MemoryManager();
  m.configFailures = 3;
  const { daemon } = setup(m);
  try {
    await daemon.start();
    assert.equal(m.configFailures, 0);
    assert.ok(daemon.lease);
  } finally {
    await daemon.stop();
    setLogSink(prev);
  }
});

test('renewal happens renew-margin before expiry and retries after an error', async (t) => {
  const prev = quiet();
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const m = new MemoryManager();
  m.ttlMs = 61 * 60_000; // expires in 61 min; margin 60 min -> renew after ~1 min
  m.renewFailures = 1;
  const { daemon } = setup(m);
  try {
    await daemon.start();
    assert.equal(m.renewCalls, 0);
    t.mock.timers.tick(61_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(m.renewCalls, 1, 'renewed when the margin was reached');
    assert.equal(daemon.counters.renewErrors, 1);
    t.mock.timers.tick(60_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(m.renewCalls, 2, 'retried one minute after the error');
    assert.equal(daemon.counters.renewals, 1);
  } finally {
    t.mock.timers.reset();
    await daemon.stop();
    setLogSink(prev);
  }
});

test('stop closes the backend and the manager but keeps the lease', async () => {
  const prev = quiet();
  const { daemon, net, manager } = setup();
  try {
    await daemon.start();
  } finally {
    await daemon.stop();
    setLogSink(prev);
  }
  assert.ok(net.closed);
  assert.ok(manager.closed);
  assert.ok(manager.leases.has('198.19.77.0/24'));
});

test('an unknown backend type is a clear error naming the available ones', async () => {
  await assert.rejects(new BackendRegistry().register('udp', async () => { throw new Error('x'); }).create('vxlanx', {} as never), /backend type "vxlanx" is not supported.*available: udp/);
});
