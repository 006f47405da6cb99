// Readiness (Daemon.ready, what /readyz and READY=1 follow): only after the lease, the running
// backend, the traffic rules and subnet.env, and never when one of them failed. flannel turns ready at
// subnet.env even when its iptables setup failed, and sends READY=1 even when subnet.env failed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendRegistry } from '../../src/backend/registry.js';
import type { Backend, RunningNetwork } from '../../src/backend/types.js';
import { Daemon, type DaemonFirewall } from '../../src/daemon.js';
import { mustParseIP } from '../../src/ip/index.js';
import { setLogSink } from '../../src/log.js';
import { MemoryManager } from '../helpers/memory-manager.js';

interface Hooks {
  steps: string[];
  failFirewall?: boolean;
  failSubnetFile?: boolean;
  failBackend?: boolean;
}

function daemonWith(h: Hooks): Daemon {
  const d: Daemon = new Daemon(
    {
      manager: new MemoryManager(),
      backends: new BackendRegistry().register('fake', async (): Promise<Backend> => ({
        type: 'fake',
        backendData: () => undefined,
        backendV6Data: () => undefined,
        start: async (): Promise<RunningNetwork> => {
          h.steps.push(`backend (lease ${d.lease ? 'held' : 'missing'}, ready ${d.ready})`);
          if (h.failBackend) throw new Error('backend failed');
          return { mtu: 1450, handle: async () => {}, reconcile: async () => 0, stats: () => ({}), close: async () => {} };
        },
      })),
      selectInterface: () => ({ name: 'eth0', index: 2, mtu: 1500, ifaceAddr: mustParseIP('198.18.0.11'), publicIP: mustParseIP('198.18.0.11') }),
      subnetFileIO: {
        readPrevious: () => ({}),
        write: () => {
          h.steps.push(`subnet.env (ready ${d.ready})`);
          if (h.failSubnetFile) throw new Error('EROFS: read-only file system');
        },
      },
      firewall: {
        setup: async () => {
          h.steps.push(`rules (ready ${d.ready})`);
          if (h.failFirewall) throw new Error('iptables-restore: exit 4');
        },
        teardown: async () => {},
      } satisfies DaemonFirewall,
    },
    { subnetFile: '/tmp/x', ipMasq: true, subnetLeaseRenewMargin: 60, reconcileSeconds: 3600, configRetrySeconds: 0.01 },
  );
  return d;
}

test('ready only after lease, backend, rules and subnet.env; unready again on stop', async () => {
  const prev = setLogSink(() => {});
  try {
    const h: Hooks = { steps: [] };
    const d = daemonWith(h);
    assert.equal(d.ready, false);
    await d.start();
    assert.deepEqual(h.steps, ['backend (lease held, ready false)', 'rules (ready false)', 'subnet.env (ready false)']);
    assert.equal(d.ready, true);
    await d.stop();
    assert.equal(d.ready, false);
  } finally {
    setLogSink(prev);
  }
});

for (const [what, fail] of [
  ['the traffic rules', { failFirewall: true }],
  ['subnet.env', { failSubnetFile: true }],
  ['the backend', { failBackend: true }],
] as const) {
  test(`never ready when ${what} failed`, async () => {
    const prev = setLogSink(() => {});
    try {
      const h: Hooks = { steps: [], ...fail };
      const d = daemonWith(h);
      await assert.rejects(d.start());
      assert.equal(d.ready, false);
      await d.stop();
    } finally {
      setLogSink(prev);
    }
  });
}

test('a daemon stopped while it waits for its config returns from start() unready', async () => {
  const prev = setLogSink(() => {});
  try {
    const manager = new MemoryManager();
    manager.getNetworkConfig = async () => {
      throw new Error('no config yet');
    };
    const d = new Daemon(
      {
        manager,
        backends: new BackendRegistry(),
        selectInterface: () => assert.fail('no interface without a config'),
        subnetFileIO: { readPrevious: () => ({}), write: () => assert.fail('no subnet.env without a config') },
      },
      { subnetFile: '/tmp/x', ipMasq: false, subnetLeaseRenewMargin: 60, configRetrySeconds: 0.01 },
    );
    const started = d.start();
    await new Promise((r) => setTimeout(r, 50));
    await d.stop();
    await started;
    assert.equal(d.ready, false);
  } finally {
    setLogSink(prev);
  }
});
