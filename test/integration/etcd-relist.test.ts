// Issue 29, etcd re-list: periodic, jittered, diffed against what the node believes, and cheap. The cost
// is counted at the store (etcd's own gRPC counters): a re-list of 1,000 unchanged leases is one range
// request and no TTL look-up, where one TTL request per lease would make it ~1,000 per node per period.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setLogSink } from '../../src/log.js';
import { EtcdManager } from '../../src/subnet/etcd/etcd-manager.js';
import { makeSubnetKey } from '../../src/subnet/lease.js';
import type { LeaseEvent } from '../../src/subnet/types.js';
import { sleep } from '../../src/util/sleep.js';
import { TestEtcd } from '../helpers/etcd.js';
import { binary, suiteNeeds } from '../helpers/prereq.js';

const CONFIG = '{"Network":"198.19.0.0/16","SubnetLen":28,"Backend":{"Type":"udp"}}';

describe('etcd periodic re-list (real etcd)', suiteNeeds(binary('etcd')), () => {
  let etcd: TestEtcd;
  let restoreSink: ((line: string) => void) | undefined;
  const logs: string[] = [];

  before(async () => {
    etcd = await TestEtcd.start();
    restoreSink = setLogSink((l) => logs.push(l));
  });
  after(async () => {
    if (restoreSink) setLogSink(restoreSink);
    await etcd?.destroy();
  });

  const started = (method: string): Promise<number> => etcd.counter('grpc_server_started_total', { grpc_method: method });

  test('a re-list of 1,000 unchanged leases costs one range request and no TTL look-up', { timeout: 120_000 }, async () => {
    const prefix = '/coreos.com/network-cost';
    const c = etcd.client();
    await c.put(`${prefix}/config`).value(CONFIG);
    // 1,000 leases as flannel writes them: each key on its own etcd lease (TTL), in batches.
    for (let b = 0; b < 10; b++) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, k) => {
          const i = b * 100 + k;
          const subnet = `198.19.${i >> 4}.${(i & 15) * 16}`;
          const grant = await c.leaseClient.leaseGrant({ TTL: 3600 });
          await c.put(`${prefix}/subnets/${subnet}-28`).value(`{"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"udp"}`).lease(grant.ID).exec();
        }),
      );
    }
    const m = new EtcdManager({ endpoints: etcd.endpoint, prefix, relistMs: 0, livenessMs: 600_000, requestTimeoutMs: 10_000 });
    const events: LeaseEvent[] = [];
    const w = await m.watchLeases((evs) => events.push(...evs));
    try {
      assert.equal(w.snapshot.length, 1000);
      const r0 = await started('Range');
      const t0 = await started('LeaseTimeToLive');
      await m.relistNowForTest();
      const ranges = (await started('Range')) - r0;
      const ttls = (await started('LeaseTimeToLive')) - t0;
      assert.ok(ranges >= 1 && ranges <= 2, `range requests for one re-list: ${ranges}`);
      assert.equal(ttls, 0, 'no TTL look-up for unchanged leases');
      assert.deepEqual(events, [], 'nothing changed, nothing emitted');
      assert.equal(m.watchStatus()!.relists, 2);

      // One lease renewed (a new etcd lease, as flannel renews): exactly one TTL look-up for it, in all.
      const grant = await c.leaseClient.leaseGrant({ TTL: 3600 });
      await c.put(`${prefix}/subnets/198.19.5.0-28`).value(`{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"udp"}`).lease(grant.ID).exec();
      const deadline = Date.now() + 5000;
      while (events.length === 0 && Date.now() < deadline) await sleep(20);
      const t1 = await started('LeaseTimeToLive');
      await m.relistNowForTest();
      assert.equal((await started('LeaseTimeToLive')) - t1, 0, 'the watch already read the changed key\'s TTL');
      assert.equal(events.length, 1);
      assert.ok(t1 - t0 <= 1, `TTL look-ups for one changed lease: ${t1 - t0}`);
    } finally {
      await w.close();
      await m.close();
      c.close();
    }
  });

  test('a missed watch event is healed by the next periodic re-list, through the same event path', { timeout: 60_000 }, async () => {
    const prefix = '/coreos.com/network-heal';
    const c = etcd.client();
    await c.put(`${prefix}/config`).value(CONFIG);
    await c.put(`${prefix}/subnets/198.19.1.0-28`).value('{"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"udp"}');
    const RELIST_MS = 1500;
    // A bound so long that the probe never runs here: only the re-list can notice the stalled stream.
    const m = new EtcdManager({ endpoints: etcd.endpoint, prefix, relistMs: RELIST_MS, livenessMs: 600_000 });
    const events: LeaseEvent[] = [];
    const w = await m.watchLeases((evs) => events.push(...evs));
    try {
      assert.equal(w.snapshot.length, 1);
      await m.jamWatchStreamForTest('stall');
      await c.put(`${prefix}/subnets/198.19.2.0-28`).value('{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"udp"}');
      await c.delete().key(`${prefix}/subnets/198.19.1.0-28`).exec();
      const t0 = Date.now();
      // Jitter keeps each period within 0.75..1.25 of RELIST_MS; slack for a busy machine.
      while (events.length < 2 && Date.now() - t0 < 1.25 * RELIST_MS + 3000) await sleep(20);
      assert.deepEqual(
        events.map((e) => `${e.type} ${makeSubnetKey(e.lease.subnet)}`).sort(),
        ['added 198.19.2.0-28', 'removed 198.19.1.0-28'],
      );
      const st = m.watchStatus()!;
      assert.ok(st.relists >= 2 && st.lastRelist !== 'never', JSON.stringify(st));
      assert.equal(Object.values(st.replacements).reduce((a, b) => a + b, 0), 0, 'healed without replacing anything');
    } finally {
      await w.close();
      await m.close();
      c.close();
    }
  });
});
