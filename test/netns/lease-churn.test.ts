// Load: 1,000 simulated peers' leases appear and disappear in the file store at ~100 events/s for
// ~20 s while two real nodes' pods ping each other. At the end each daemon's peers are exactly the
// store's leases and its data-plane routes match (no event lost), the ping lost ≤ 1 %, and the
// daemons' RSS (sampled every 2 s) stayed flat.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, type LabNode } from '../../src/lab/lab.js';
import { fetchStatus } from '../../src/status.js';
import { formatCIDR, mustParseIP, parseCIDR } from '../../src/ip/index.js';
import { encodeLeaseFile } from '../../src/subnet/file/lease-file.js';
import { makeSubnetKey } from '../../src/subnet/lease.js';
import { writeFileAtomic } from '../../src/subnet/subnetenv.js';
import { need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { continuousEchoes, summary as echoSummary } from '../helpers/echo.js';
import type { ProbeResult } from '../../src/probe/prober.js';
import { prng } from '../helpers/hostile.js';
import { sleep } from '../../src/util/sleep.js';
import { useLab } from '../helpers/lab.js';

const reqs = [rootAndNetns()];
const PEERS = 1000;
const EVENTS = 2000;
const RATE = 100; // events per second
const SUBNET_LEN = 26; // 198.19.0.0/16 in /26s: 1024 subnets, room for 1000 fake peers and 2 real nodes

const rssKiB = (pid: number): number => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

/** Subnet i of the /16 in /26 steps, as "198.19.a.b/26". */
const subnetOf = (i: number): string => `198.19.${Math.floor(i / 4)}.${(i % 4) * 64}/${SUBNET_LEN}`;

describe('lease churn under traffic: 1,000 simulated peers, ~100 events/s, 2 real udp nodes', suiteNeeds(...reqs), () => {
  let lab: Lab;
  const setup = { nodes: 2, backend: 'udp', ipv6: false, subnetLen: SUBNET_LEN };
  useLab(setup, (l) => (lab = l));

  test('tables end exact, ping loss ≤ 1 %, RSS flat', async (t) => {
    if (!need(t, ...reqs)) return;
    const [a, b] = lab.nodes as [LabNode, LabNode];
    const realSubnets = new Set(lab.nodes.map((n) => formatCIDR(parseCIDR(n.subnetEnv.FLANNEL_SUBNET!)!)));
    // Fake peers take subnets the real nodes do not hold; public IPs in 198.18.4.0/22 (never used for traffic).
    const free: string[] = [];
    for (let i = 1; free.length < PEERS; i++) if (!realSubnets.has(subnetOf(i))) free.push(subnetOf(i));
    const fileOf = (s: string): string => join(lab.storeDir, makeSubnetKey(parseCIDR(s)));
    const live = new Map<string, string>(); // subnet -> public IP
    const write = (s: string, ip: string): void => {
      writeFileAtomic(fileOf(s), encodeLeaseFile({ publicIP: mustParseIP(ip), backendType: 'udp' }, new Date(Date.now() + 3600_000)));
      live.set(s, ip);
    };
    const remove = (s: string): void => {
      rmSync(fileOf(s));
      live.delete(s);
    };

    const ping = continuousEchoes(a.pod, b.podIP, 20);
    let result: ProbeResult;
    const rss: Array<{ s: number; a: number; b: number }> = [];
    const t0 = Date.now();
    const sampler = setInterval(() => rss.push({ s: Math.round((Date.now() - t0) / 1000), a: rssKiB(a.pid!), b: rssKiB(b.pid!) }), 2000);
    rss.push({ s: 0, a: rssKiB(a.pid!), b: rssKiB(b.pid!) });
    const r = prng(4242);
    let created = 0;
    let deleted = 0;
    let changed = 0;
    try {
      // Events: every fake peer is created once (1,000); the rest delete a live one or re-create a
      // deleted one with another public IP, so leases both appear and disappear all along.
      const gone: string[] = [];
      for (let k = 0; k < EVENTS; k++) {
        const due = t0 + (k * 1000) / RATE;
        if (due > Date.now()) await sleep(due - Date.now());
        const mustCreate = created < PEERS && (k % 2 === 0 || EVENTS - k <= PEERS - created);
        if (mustCreate) {
          write(free[created]!, `198.18.${4 + (created >> 8)}.${created & 255}`);
          created++;
        } else if (gone.length > 0 && r() < 0.4) {
          const s = gone.splice(Math.floor(r() * gone.length), 1)[0]!;
          write(s, `198.18.7.${Math.floor(r() * 250) + 1}`);
          changed++;
        } else {
          const keys = [...live.keys()];
          const s = keys[Math.floor(r() * keys.length)]!;
          remove(s);
          gone.push(s);
          deleted++;
        }
      }
      const churnMs = Date.now() - t0;
      t.diagnostic(`${created} created, ${deleted} deleted, ${changed} re-created; ${EVENTS} events in ${churnMs} ms (${((EVENTS * 1000) / churnMs).toFixed(0)}/s); ${live.size} live at the end`);

      // Converged: each daemon's peers are exactly the store's other leases, all installed.
      const storeLeases = readdirSync(lab.storeDir).filter((f) => /^\d/.test(f)).length;
      assert.equal(storeLeases, live.size + 2);
      for (const n of [a, b]) {
        const other = lab.nodes.find((x) => x !== n)!;
        const want = [...live.keys(), formatCIDR(parseCIDR(other.subnetEnv.FLANNEL_SUBNET!)!)].sort();
        let got: string[] = [];
        let routes: unknown;
        const deadline = Date.now() + 10_000;
        while (Date.now() < deadline) {
          const s = await fetchStatus(lab.statusSocket(n));
          got = s.peers.map((p) => p.subnet ?? '').sort();
          routes = s.routes;
          if (JSON.stringify(got) === JSON.stringify(want) && s.routes?.installed === want.length && s.routes.expected === want.length) break;
          await sleep(200);
        }
        t.diagnostic(`${n.name}: converged ${Date.now() - t0 - churnMs} ms after the last event: ${got.length} peers, routes ${JSON.stringify(routes)}`);
        assert.deepEqual(got, want, `${n.name} peers == store leases`);
        assert.deepEqual(routes, { expected: want.length, installed: want.length });
        // Publics too: a re-created lease's new address was taken, not the old one.
        const s = await fetchStatus(lab.statusSocket(n));
        for (const p of s.peers) if (live.has(p.subnet!)) assert.equal(p.publicIP, live.get(p.subnet!), p.subnet);
      }
    } finally {
      clearInterval(sampler);
      result = await ping.stop();
    }
    rss.push({ s: Math.round((Date.now() - t0) / 1000), a: rssKiB(a.pid!), b: rssKiB(b.pid!) });
    t.diagnostic(`RSS MiB (s:n1/n2): ${rss.map((x) => `${x.s}:${(x.a / 1024).toFixed(0)}/${(x.b / 1024).toFixed(0)}`).join(' ')}`);
    t.diagnostic(`ping: ${echoSummary(result)}`);
    const loss = 1 - result.received / result.sent;
    assert.ok(result.sent > 500, 'ping ran throughout');
    assert.ok(loss <= 0.01, `ping loss ${(loss * 100).toFixed(2)} %`);
    // Flat: after the first 4 s (the first few hundred leases), RSS may not keep climbing.
    const warm = rss.find((x) => x.s >= 4) ?? rss[0]!;
    const last = rss.at(-1)!;
    for (const k of ['a', 'b'] as const) assert.ok(last[k] < warm[k] * 1.5 + 10 * 1024, `RSS ${k}: ${warm[k]} -> ${last[k]} KiB`);
  });
});
