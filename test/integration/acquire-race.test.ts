// Many nodes acquiring at the same instant against a real etcd, in a network with barely more subnets
// than nodes, so most of them collide: every one must end with its own subnet, none lost, none doubled.
// (The multi-process file-store race is in test/unit/filestore.test.ts.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mustParseIP } from '../../src/ip/index.js';
import { setLogSink, setVerbosity } from '../../src/log.js';
import { EtcdManager } from '../../src/subnet/etcd/etcd-manager.js';
import { FileManager } from '../../src/subnet/file/file-manager.js';
import { makeSubnetKey } from '../../src/subnet/lease.js';
import type { Lease, Manager } from '../../src/subnet/types.js';
import { TestEtcd } from '../helpers/etcd.js';
import { binary, suiteNeeds } from '../helpers/prereq.js';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const N = 30;
// /22 in /27s: 32 subnets, flannel's range skips the first one: 31 for 30 nodes.
const TIGHT = '{"Network":"198.19.0.0/22","SubnetLen":27,"Backend":{"Type":"udp"}}';
const keyOf = (l: Lease): string => makeSubnetKey(l.subnet, l.ipv6Subnet);
const ipOf = (i: number): string => `198.18.${Math.floor(i / 200)}.${10 + (i % 200)}`;

/** Starts every acquisition in the same tick; returns leases in node order and the "lost the race" count. */
async function raceAll<M extends Manager>(make: () => M[], made: M[] = []): Promise<{ leases: Lease[]; collisions: number }> {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  setVerbosity(1);
  try {
    const managers = make();
    made.push(...managers);
    const leases = await Promise.all(managers.map((m, i) => m.acquireLease({ publicIP: mustParseIP(ipOf(i)), backendType: 'udp' })));
    return { leases, collisions: lines.filter((l) => l.includes('Lost the race')).length };
  } finally {
    setVerbosity(0);
    setLogSink(restore);
  }
}

describe('concurrent acquisition: 30 etcd managers, 31 free subnets', suiteNeeds(binary('etcd')), () => {
  let etcd: TestEtcd;
  const managers: EtcdManager[] = [];
  before(async () => {
    etcd = await TestEtcd.start();
  });
  after(async () => {
    await Promise.all(managers.map((m) => m.close().catch(() => {})));
    await etcd?.destroy();
  });

  for (const round of [1, 2]) {
    test(`round ${round}: all distinct, none lost, the store holds exactly one lease per node`, async (t) => {
      const prefix = `/coreos.com/network-race${round}`;
      const c = etcd.client();
      try {
        await c.put(`${prefix}/config`).value(TIGHT);
        const t0 = Date.now();
        const make = (): EtcdManager[] => Array.from({ length: N }, () => new EtcdManager({ endpoints: etcd.endpoint, prefix, configRetryMs: 50, requestTimeoutMs: 5000 }));
        const { leases, collisions } = await raceAll(make, managers);
        t.diagnostic(`${N} acquisitions in ${Date.now() - t0} ms, ${collisions} lost races retried`);
        const keys = leases.map(keyOf);
        assert.equal(new Set(keys).size, N, `duplicates: ${keys.sort().join(' ')}`);
        // What the store says agrees: N keys, each naming the node that got it.
        const stored = await c.getAll().prefix(`${prefix}/subnets/`).strings();
        assert.equal(Object.keys(stored).length, N);
        leases.forEach((l, i) => {
          const v = stored[`${prefix}/subnets/${keyOf(l)}`];
          assert.ok(v, `lease ${keyOf(l)} of node ${i} is in etcd`);
          assert.equal((JSON.parse(v) as { PublicIP: string }).PublicIP, ipOf(i));
        });
        // Collisions did happen, so the retry path was exercised (30 random picks in 31 slots).
        assert.ok(collisions > 0, 'expected lost races with 30 nodes on 31 subnets');
      } finally {
        c.close();
      }
    });
  }
});

describe('concurrent acquisition: 30 file-store managers in one directory, 31 free subnets', () => {
  test('all distinct, none lost, one file per node', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'flannelts-race-'));
    try {
      writeFileSync(join(dir, 'config'), TIGHT);
      const ms: FileManager[] = [];
      const { leases, collisions } = await raceAll(() => Array.from({ length: N }, () => new FileManager({ dir })), ms);
      await Promise.all(ms.map((m) => m.close()));
      t.diagnostic(`${collisions} lost races retried`);
      assert.equal(new Set(leases.map(keyOf)).size, N);
      assert.equal(readdirSync(dir).filter((n) => !n.startsWith('.') && n !== 'config').length, N);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
