// The daemon's two optional manager hooks the kube manager provides: GetStoredPublicIP before the
// interface is chosen, CompleteLease once subnet.env is written (its failure is logged, not fatal).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendRegistry } from '../../src/backend/registry.js';
import type { Backend, ExternalInterface, RunningNetwork } from '../../src/backend/types.js';
import { Daemon } from '../../src/daemon.js';
import { mustParseIP } from '../../src/ip/index.js';
import { setLogSink } from '../../src/log.js';
import type { Lease, StoredPublicIP } from '../../src/subnet/types.js';
import { MemoryManager } from '../helpers/memory-manager.js';
import { sleep } from '../../src/util/sleep.js';

class HookedManager extends MemoryManager {
  readonly calls: string[] = [];
  failComplete = false;
  async getStoredPublicIP(): Promise<StoredPublicIP> {
    this.calls.push('getStoredPublicIP');
    return { publicIP: '198.18.0.99' };
  }
  async completeLease(lease: Lease): Promise<void> {
    this.calls.push(`completeLease ${lease.subnet ? 'with subnet' : '-'}`);
    if (this.failComplete) throw new Error('API server said no');
  }
}

const net: RunningNetwork = { mtu: 1472, handle: async () => {}, reconcile: async () => 0, stats: () => ({}), close: async () => {} };

function setup(manager: HookedManager, seen: Array<StoredPublicIP | undefined>, order: string[]): Daemon {
  const backend: Backend = { type: 'fake', backendData: () => undefined, backendV6Data: () => undefined, start: async () => net };
  return new Daemon(
    {
      manager,
      backends: new BackendRegistry().register('fake', async () => backend),
      selectInterface: (_config, stored): ExternalInterface => {
        seen.push(stored);
        return { name: 'eth0', index: 2, mtu: 1500, ifaceAddr: mustParseIP('198.18.0.11'), publicIP: mustParseIP(stored?.publicIP ?? '198.18.0.11') };
      },
      subnetFileIO: { readPrevious: () => ({}), write: () => order.push('subnet.env') },
    },
    { subnetFile: '/run/flannel/subnet.env', ipMasq: false, subnetLeaseRenewMargin: 60, reconcileSeconds: 3600 },
  );
}

test('stored public IP reaches interface selection; CompleteLease runs after subnet.env', async () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  const m = new HookedManager();
  const seen: Array<StoredPublicIP | undefined> = [];
  const order: string[] = [];
  const d = setup(m, seen, order);
  try {
    await d.start();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen, [{ publicIP: '198.18.0.99' }]);
    assert.equal(d.lease?.attrs.publicIP?.value, mustParseIP('198.18.0.99').value);
    assert.deepEqual(m.calls, ['getStoredPublicIP', 'completeLease with subnet']);
    assert.deepEqual(order, ['subnet.env']);
  } finally {
    await d.stop();
    setLogSink(prev);
  }
});

test('a failing CompleteLease is logged and the daemon keeps running', async () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  const m = new HookedManager();
  m.failComplete = true;
  const d = setup(m, [], []);
  try {
    await d.start();
    await sleep(10);
    assert.ok(d.network, 'still running');
    assert.ok(lines.some((l) => /CompleteLease execute error: API server said no/.test(l)));
  } finally {
    await d.stop();
    setLogSink(prev);
  }
});

test('managers without the hooks (etcd, file) are unaffected: selectInterface gets no stored addresses', async () => {
  const prev = setLogSink(() => {});
  const seen: Array<StoredPublicIP | undefined> = [];
  const backend: Backend = { type: 'fake', backendData: () => undefined, backendV6Data: () => undefined, start: async () => net };
  const d = new Daemon(
    {
      manager: new MemoryManager(),
      backends: new BackendRegistry().register('fake', async () => backend),
      selectInterface: (_c, stored) => {
        seen.push(stored);
        return { name: 'eth0', index: 2, mtu: 1500, ifaceAddr: mustParseIP('198.18.0.11'), publicIP: mustParseIP('198.18.0.11') };
      },
      subnetFileIO: { readPrevious: () => ({}), write: () => {} },
    },
    { subnetFile: '/x', ipMasq: false, subnetLeaseRenewMargin: 60, reconcileSeconds: 3600 },
  );
  try {
    await d.start();
    assert.deepEqual(seen, [undefined]);
  } finally {
    await d.stop();
    setLogSink(prev);
  }
});
