// The daemon's firewall hook: rules for the held lease go in before subnet.env is written (flannel's
// order), and come out on a clean stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BackendRegistry } from '../../src/backend/registry.js';
import type { Backend, RunningNetwork } from '../../src/backend/types.js';
import { Daemon, type DaemonFirewall } from '../../src/daemon.js';
import { formatCIDR, mustParseIP } from '../../src/ip/index.js';
import { setLogSink } from '../../src/log.js';
import { Firewall } from '../../src/firewall/firewall.js';
import { MemoryManager } from '../helpers/memory-manager.js';
import { FakeIptables } from '../helpers/fake-iptables.js';

const net: RunningNetwork = { mtu: 1450, handle: async () => {}, reconcile: async () => 0, stats: () => ({}), close: async () => {} };
const backend: Backend = { type: 'fake', backendData: () => undefined, backendV6Data: () => undefined, start: async () => net };

function daemonWith(firewall: DaemonFirewall, steps: string[]): Daemon {
  return new Daemon(
    {
      manager: new MemoryManager(),
      backends: new BackendRegistry().register('fake', async () => backend),
      selectInterface: () => ({ name: 'eth0', index: 2, mtu: 1500, ifaceAddr: mustParseIP('198.18.0.11'), publicIP: mustParseIP('198.18.0.11') }),
      subnetFileIO: { readPrevious: () => ({}), write: () => steps.push('subnet.env') },
      firewall,
    },
    { subnetFile: '/tmp/x', ipMasq: true, subnetLeaseRenewMargin: 60, reconcileSeconds: 3600, configRetrySeconds: 0.01 },
  );
}

test('daemon: firewall setup with the lease before subnet.env; teardown on stop', async () => {
  const prev = setLogSink(() => {});
  try {
    const steps: string[] = [];
    const d = daemonWith(
      {
        setup: async (config, lease) => void steps.push(`setup ${config.network ? formatCIDR(config.network) : '-'} ${lease.subnet ? formatCIDR(lease.subnet) : '-'}`),
        teardown: async () => void steps.push('teardown'),
      },
      steps,
    );
    await d.start();
    assert.match(steps[0] ?? '', /^setup 198\.19\.0\.0\/16 198\.19\.\d+\.0\/24$/);
    assert.equal(steps[1], 'subnet.env');
    await d.stop();
    assert.equal(steps[2], 'teardown');
  } finally {
    setLogSink(prev);
  }
});

test('daemon + Firewall: -ip-masq rules for the acquired lease exist while running and are gone after stop', async () => {
  const prev = setLogSink(() => {});
  try {
    const ipt = new FakeIptables();
    const d = daemonWith(new Firewall(ipt, { ipMasq: true, forwardRules: true, resyncSeconds: 3600 }), []);
    await d.start();
    const lease = d.lease!;
    const nat = await ipt.lines(4, 'nat');
    assert.ok(nat.includes(`-A FLANNEL-POSTRTG -s ${formatCIDR(lease.subnet!)} -d 198.19.0.0/16 -m comment --comment "flanneld masq" -j RETURN`), nat.join('\n'));
    assert.equal((await ipt.lines(4, 'filter')).length, 4);
    await d.stop();
    assert.deepEqual(await ipt.lines(4, 'nat'), []);
    assert.deepEqual(await ipt.lines(4, 'filter'), []);
  } finally {
    setLogSink(prev);
  }
});

test('daemon: a failing masquerade setup stops start() with the error (no subnet.env)', async () => {
  const prev = setLogSink(() => {});
  try {
    const ipt = new FakeIptables();
    ipt.missing = true;
    const steps: string[] = [];
    const d = daemonWith(new Firewall(ipt, { ipMasq: true, forwardRules: true, resyncSeconds: 3600 }), steps);
    await assert.rejects(d.start(), /not found in PATH/);
    assert.deepEqual(steps, []);
    await d.stop();
  } finally {
    setLogSink(prev);
  }
});

test('daemon: the firewall preflight runs once the config is known; its refusal stops start() before a lease or a backend', async () => {
  const prev = setLogSink(() => {});
  try {
    const steps: string[] = [];
    const d = daemonWith(
      {
        preflight: async (config) => {
          steps.push(`preflight ${config.network ? formatCIDR(config.network) : '-'}`);
          throw new Error('nft not found in PATH: install nftables (apt-get install nftables)');
        },
        setup: async () => void steps.push('setup'),
        teardown: async () => void steps.push('teardown'),
      },
      steps,
    );
    await assert.rejects(d.start(), /install nftables/);
    assert.deepEqual(steps, ['preflight 198.19.0.0/16']);
    assert.equal(d.lease, undefined, 'no lease taken');
    assert.equal(d.network, undefined, 'no backend started');
    await d.stop();
  } finally {
    setLogSink(prev);
  }
});
