// Kube mode across restarts and at start: the VtepMAC stored in our node's annotations reused for a
// newly created vxlan device (an existing one keeps its MAC, a bad one is replaced), EVENT_QUEUE_DEPTH
// and CONT_WHEN_CACHE_NOT_READY with flannel's meaning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNetworkConfig } from '../../src/config/netconf.js';
import { mustParseIP, parseCIDR } from '../../src/ip/index.js';
import { vxlanBackendFactory } from '../../src/backend/vxlan/vxlan-backend.js';
import { decodeVxlanBackendData } from '../../src/backend/vxlan/vxlan-options.js';
import type { ExternalInterface } from '../../src/backend/types.js';
import { annotationNames, KubeConfigError, storedVtepMacs, type NodeLike } from '../../src/subnet/kube/annotations.js';
import { DEFAULT_EVENT_QUEUE_DEPTH, readKubeEnv } from '../../src/subnet/kube/kube-env.js';
import { LeaseEventQueue } from '../../src/subnet/kube/event-queue.js';
import { KubeManager } from '../../src/subnet/kube/kube-manager.js';
import type { NodeApi } from '../../src/subnet/kube/client.js';
import type { Lease, LeaseEvent } from '../../src/subnet/types.js';
import { sleep } from '../../src/util/sleep.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { captureLogs } from '../helpers/logs.js';

const names = annotationNames();
const STORED = '2a:6b:41:86:81:04';
const STORED6 = '2a:6b:41:86:81:06';
const FRESH = '0a:00:00:00:00:01';

function kernel(): { k: FakeKernel; ext: ExternalInterface } {
  const k = new FakeKernel();
  k.addPlainLink('eth0', 1500, 2);
  const ext: ExternalInterface = { name: 'eth0', index: 2, mtu: 1500, ifaceAddr: mustParseIP('198.18.0.11'), publicIP: mustParseIP('198.18.0.11'), ifaceAddrV6: mustParseIP('2001:db8::b'), publicIPv6: mustParseIP('2001:db8::b') };
  return { k, ext };
}

async function vxlanMacs(k: FakeKernel, ext: ExternalInterface, stored: { v4?: string; v6?: string } | undefined, dual = false): Promise<{ v4?: string; v6?: string }> {
  const config = parseNetworkConfig(`{"Network":"198.19.0.0/16"${dual ? ',"EnableIPv6":true,"IPv6Network":"2001:db8:100::/56"' : ''},"Backend":{"Type":"vxlan"}}`);
  const be = await vxlanBackendFactory({ ops: () => k, newMac: () => FRESH })({ config, extIface: ext, storedMacs: stored ? async () => stored : undefined });
  const mac = (d: unknown): string | undefined => {
    const r = decodeVxlanBackendData(d);
    return r.ok ? r.mac : undefined;
  };
  return { v4: mac(be.backendData()), v6: mac(be.backendV6Data()) };
}

test('a newly created flannel.<VNI> and flannel-v6.<VNI> take the VtepMACs stored in the node annotations', async () => {
  const { lines, restore } = captureLogs();
  try {
    const { k, ext } = kernel();
    assert.deepEqual(await vxlanMacs(k, ext, { v4: STORED, v6: STORED6.toUpperCase() }, true), { v4: STORED, v6: STORED6 });
    assert.equal(k.findLink('flannel.1')!.mac, STORED);
    assert.equal(k.findLink('flannel-v6.1')!.mac, STORED6);
    assert.ok(lines.some((l) => l.includes(`Interface flannel.1 mac address set to: ${STORED}`)));
  } finally {
    restore();
  }
});

test('an existing compatible device keeps its own MAC; without a stored MAC a new one is chosen (etcd mode)', async () => {
  const { restore } = captureLogs();
  try {
    const { k, ext } = kernel();
    await vxlanMacs(k, ext, undefined);
    assert.equal(k.findLink('flannel.1')!.mac, FRESH);
    // Restart with a different MAC in the annotations: the device exists and is compatible, so it stays.
    assert.deepEqual(await vxlanMacs(k, ext, { v4: STORED }), { v4: FRESH, v6: undefined });
    assert.equal(k.calls.filter((c) => c === 'link add flannel.1').length, 1);
  } finally {
    restore();
  }
});

test('a stored MAC that does not parse is a warning naming it, and the device gets a new MAC', async () => {
  const { lines, restore } = captureLogs();
  try {
    const { k, ext } = kernel();
    assert.deepEqual(await vxlanMacs(k, ext, { v4: 'zz:6b:41:86:81' }), { v4: FRESH, v6: undefined });
    assert.ok(lines.some((l) => /^W.*Failed to parse mac addr\(zz:6b:41:86:81\) stored for flannel\.1: .*using the new MAC 0a:00:00:00:00:01/.test(l)), lines.join('\n'));
  } finally {
    restore();
  }
});

test('stored VtepMACs are read from backend-data / backend-v6-data with Go JSON keys and any annotation prefix', () => {
  assert.deepEqual(storedVtepMacs({ [names.backendData]: `{"VNI":1,"VtepMAC":"${STORED}"}`, [names.backendV6Data]: `{"vtepmac":"${STORED6}","VNI":1}` }, names), { v4: STORED, v6: STORED6 });
  const custom = annotationNames('example.com/flannel');
  assert.deepEqual(storedVtepMacs({ 'example.com/flannel-backend-data': `{"VtepMAC":"${STORED}"}` }, custom), { v4: STORED });
  assert.deepEqual(storedVtepMacs({ [names.backendData]: 'null' }, names), {});
  assert.deepEqual(storedVtepMacs({ [names.backendData]: '{"VtepMAC":' }, names), {});
  assert.deepEqual(storedVtepMacs({ [names.backendData]: '{"VtepMAC":"not-a-mac"}' }, names), { v4: 'not-a-mac' }, 'judged (and replaced) by the backend');
});

test('EVENT_QUEUE_DEPTH: 5000 by default and for ≤ 0, a number sets it, anything else is fatal naming it', () => {
  assert.equal(readKubeEnv({}).eventQueueDepth, DEFAULT_EVENT_QUEUE_DEPTH);
  assert.equal(DEFAULT_EVENT_QUEUE_DEPTH, 5000);
  assert.equal(readKubeEnv({ EVENT_QUEUE_DEPTH: '0' }).eventQueueDepth, 5000);
  assert.equal(readKubeEnv({ EVENT_QUEUE_DEPTH: '-3' }).eventQueueDepth, 5000);
  assert.equal(readKubeEnv({ EVENT_QUEUE_DEPTH: '12' }).eventQueueDepth, 12);
  assert.equal(readKubeEnv({ EVENT_QUEUE_DEPTH: '+012' }).eventQueueDepth, 12);
  for (const bad of ['abc', '1.5', '0x10', ' 5', '1e3']) {
    assert.throws(() => readKubeEnv({ EVENT_QUEUE_DEPTH: bad }), (e: unknown) => e instanceof KubeConfigError && e.message.startsWith(`env EVENT_QUEUE_DEPTH=${bad} format error`), bad);
  }
  assert.equal(readKubeEnv({ CONT_WHEN_CACHE_NOT_READY: 'true' }).continueWhenCacheNotReady, true);
  assert.equal(readKubeEnv({ CONT_WHEN_CACHE_NOT_READY: 'TRUE' }).continueWhenCacheNotReady, false, 'flannel compares with "true"');
});

const ev = (i: number): LeaseEvent => ({ type: 'added', lease: { subnet: parseCIDR(`198.19.${i}.0/24`), attrs: { backendType: 'vxlan' }, expiration: new Date() } as Lease });

test('the lease-event queue hands at most EVENT_QUEUE_DEPTH events at once, in order, waits for the consumer, drops nothing', async () => {
  const { lines, restore } = captureLogs();
  try {
    const batches: number[][] = [];
    const q = new LeaseEventQueue(2, async (events) => {
      batches.push(events.map((e) => Number(e.lease.subnet!.value & 0xff00n) >> 8));
      await sleep(5);
    });
    q.push([ev(1), ev(2), ev(3)]);
    q.push([ev(4), ev(5)]);
    while (q.backlog > 0 || batches.length < 3) await sleep(5);
    await sleep(10);
    assert.deepEqual(batches, [[1, 2], [3, 4], [5]]);
    // Each push that leaves more than the depth waiting is one "buffer full" (flannel logs each).
    assert.equal(lines.filter((l) => l.includes('Channel buffer full, add event asynchronously')).length, 2);
    assert.equal(q.counters.delivered, 5);
  } finally {
    restore();
  }
});

/** A node API whose list fails until `listOk` is set. */
function flakyApi(nodes: NodeLike[]): NodeApi & { listOk: boolean } {
  const api = {
    server: 'http://198.18.0.1:6443',
    listOk: false,
    list: async () => {
      if (!api.listOk) throw new Error('connect ECONNREFUSED 198.18.0.1:6443');
      return { items: nodes, resourceVersion: '1' };
    },
    watch: () => () => {},
    getNode: async () => { throw new Error('unused'); },
    getPod: async () => { throw new Error('unused'); },
    patchNodeStatus: async () => {},
  };
  return api as unknown as NodeApi & { listOk: boolean };
}

test('the node cache not synced in time: exit (an error) by default, go on with CONT_WHEN_CACHE_NOT_READY=true', async () => {
  const { lines, restore } = captureLogs();
  const dir = mkdtempSync(join(tmpdir(), 'flannelts-kube-env-'));
  try {
    const netConf = join(dir, 'net-conf.json');
    writeFileSync(netConf, '{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}');
    const peer: NodeLike = {
      metadata: { name: 'n2', resourceVersion: '1', annotations: { [names.kubeSubnetManager]: 'true', [names.backendType]: 'vxlan', [names.publicIP]: '198.18.0.12', [names.backendData]: `{"VNI":1,"VtepMAC":"${STORED}"}` } },
      spec: { podCIDR: '198.19.2.0/24' },
    };
    const mk = (api: NodeApi, cont: boolean): KubeManager =>
      new KubeManager({ api, nodeName: 'n1', names, netConfPath: netConf, setNodeNetworkUnavailable: false, retryInitialMs: 5, retryMaxMs: 10, cacheSyncTimeoutMs: 60, env: { continueWhenCacheNotReady: cont } });

    const strict = mk(flakyApi([peer]), false);
    await assert.rejects(strict.watchLeases(() => {}), /error waiting for nodeController to sync state: .*CONT_WHEN_CACHE_NOT_READY=true/);
    await strict.close();

    const api = flakyApi([peer]);
    const lenient = mk(api, true);
    const got: LeaseEvent[] = [];
    const w = await lenient.watchLeases((events) => void got.push(...events));
    assert.deepEqual(w.snapshot, []);
    assert.ok(lines.some((l) => l.includes('Timed out waiting for node controller sync') && l.includes('Continuing anyway')));
    api.listOk = true;
    for (let i = 0; i < 100 && got.length === 0; i++) await sleep(10);
    assert.deepEqual(got.map((e) => e.type), ['added'], 'the nodes of the late first list arrive as events');
    await w.close();
    await lenient.close();
  } finally {
    restore();
    rmSync(dir, { recursive: true, force: true });
  }
});
