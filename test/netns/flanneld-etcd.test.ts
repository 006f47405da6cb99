// flanneld end to end on a real etcd (inside the lab's underlay namespace): flannel's keys and JSON,
// healthz, SIGTERM keeping the lease, a lease deleted from etcd removing the peer's route.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../src/lab/lab.js';
import { LAB_ETCD_PREFIX } from '../../src/lab/lab-etcd.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { fetchStatus } from '../../src/status.js';
import { useLab } from '../helpers/lab.js';
import { assertAllPairs } from '../helpers/lab-probe.js';
import { echoes, firstFailure, NET_UNREACHABLE, summary } from '../helpers/echo.js';
import { sleep } from '../../src/util/sleep.js';

const udpTool = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'udp-tool.js');

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

/** An IPv4 ICMP echo request, as a pod would send it (the seed the garbage generator mutates). */
function icmpEcho(src: string, dst: string): Buffer {
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(28, 2);
  ip[8] = 64;
  ip[9] = 1;
  Buffer.from(src.split('.').map(Number)).copy(ip, 12);
  Buffer.from(dst.split('.').map(Number)).copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  const icmp = Buffer.from([8, 0, 0, 0, 0x12, 0x34, 0, 1]);
  icmp.writeUInt16BE(checksum(icmp), 2);
  return Buffer.concat([ip, icmp]);
}

describe('flanneld on etcd', suiteNeeds(rootAndNetns(), binary('etcd')), () => {
  let lab: Lab;
  useLab({ nodes: 3, backend: 'udp', ipv6: false, store: 'etcd', daemonArgs: ['-healthz-port=10256', '-v=1'] }, (l) => (lab = l));

  test('leases are flannel keys with flannel JSON (udp writes no BackendData)', (t) => {
    if (!need(t, rootAndNetns(), binary('etcd'))) return;
    const kvs = lab.etcdList(`${LAB_ETCD_PREFIX}/subnets/`);
    assert.equal(kvs.length, 3);
    for (const n of lab.nodes) {
      const key = `${LAB_ETCD_PREFIX}/subnets/${n.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0-24')}`;
      const kv = kvs.find((k) => k.key === key);
      assert.ok(kv, `${key} in ${kvs.map((k) => k.key).join(', ')}`);
      assert.equal(kv.value, `{"PublicIP":"${n.underlayIP}","PublicIPv6":null,"BackendType":"udp"}`);
    }
  });

  test('all pod pairs pass', async (t) => {
    if (!need(t, rootAndNetns())) return;
    await assertAllPairs(lab);
  });

  test('healthz answers like flanneld', (t) => {
    if (!need(t, rootAndNetns())) return;
    const script = "fetch('http://127.0.0.1:10256/healthz').then(async r=>console.log(r.status, await r.text()))";
    const out = lab.nodes[0]!.ns.exec(process.execPath, ['-e', script]).trim();
    assert.equal(out, '200 flanneld is running');
  });

  test('status over the root-only socket matches the lab and counts real traffic per peer', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, b] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0]];
    const sock = lab.statusSocket(a);
    const { statSync } = await import('node:fs');
    assert.equal(statSync(sock).mode & 0o777, 0o600);
    const before = await fetchStatus(sock);
    const t0 = Date.now();
    const echoed = await echoes(a.pod, b.podIP, { count: 20, intervalMs: 10 });
    assert.ok(echoed.received >= 1, summary(echoed));
    const s = await fetchStatus(sock);
    assert.equal(s.backend, 'udp');
    assert.equal(s.device, 'flannel0');
    assert.equal(s.mtu, 1472);
    assert.equal(s.lease?.subnet, a.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0/24'));
    assert.equal(s.peers.length, 2);
    assert.deepEqual(s.routes, { expected: 2, installed: 2 });
    const peer = s.peers.find((p) => p.publicIP === b.underlayIP)!;
    const peerBefore = before.peers.find((p) => p.publicIP === b.underlayIP)!;
    assert.ok(peer.tx!.packets - peerBefore.tx!.packets >= 20, `tx ${peerBefore.tx!.packets} -> ${peer.tx!.packets}`);
    assert.ok(peer.rx!.packets - peerBefore.rx!.packets >= 20, `rx ${peerBefore.rx!.packets} -> ${peer.rx!.packets}`);
    // The replies just arrived from b: last seen since the pings started (stored to the second). Not
    // "within 5 s of now": on a loaded machine the status call alone can take that long.
    const seen = Date.parse(peer.lastSeen ?? '');
    assert.ok(seen >= t0 - 1500 && seen <= Date.now() + 1000, `lastSeen ${peer.lastSeen}, pings from ${new Date(t0).toISOString()}`);
    assert.deepEqual(s.capture, { active: false, lost: 0 });
    // Every echo request was a small send, after which the engine polled for the reply (or skipped it).
    assert.equal(s.replyPoll?.windowUs, 300);
    const polls = (x: typeof s) => (x.replyPoll ? x.replyPoll.hits + x.replyPoll.misses + x.replyPoll.skipped : 0);
    assert.ok(polls(s) - polls(before) >= 20, `reply polling ${JSON.stringify(before.replyPoll)} -> ${JSON.stringify(s.replyPoll)}`);
    // Pings are light: the automatic thread mode has both directions on one thread (a split under some
    // earlier load would have merged back by now).
    assert.equal(s.threads?.mode, 0);
    assert.equal(s.threads?.current, 1);
    assert.equal(s.threads?.splits, s.threads?.merges);
  });

  test('/metrics counts traffic and drops by reason', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, b] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0]];
    const scrape = (): string =>
      a.ns.exec(process.execPath, ['-e', "fetch('http://127.0.0.1:10256/metrics').then(async r=>process.stdout.write(await r.text()))"]);
    const value = (text: string, re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
    const peer = b.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0/24');
    const txRe = new RegExp(`flannel_dataplane_packets_total\\{direction="tx",peer="${peer.replace(/\./g, '\\.')}"\\} (\\d+)`);
    const noRouteRe = /flannel_dataplane_drops_total\{reason="no_route"\} (\d+)/;
    const m0 = scrape();
    const echoed = await echoes(a.pod, b.podIP, { count: 10, intervalMs: 10 });
    assert.ok(echoed.received >= 1, summary(echoed));
    // An overlay address no lease covers: the engine answers net unreachable and counts no_route.
    await echoes(a.pod, '198.19.255.254', { count: 3, intervalMs: 10 });
    const m1 = scrape();
    assert.match(m1, /^flannel_leases 2$/m);
    assert.match(m1, /^flannel_dataplane_capture_active 0$/m);
    for (const result of ['hit', 'miss', 'skipped']) assert.match(m1, new RegExp(`^flannel_dataplane_reply_poll_total\\{result="${result}"\\} \\d+$`, 'm'));
    assert.match(m1, /^flannel_dataplane_threads 1$/m);
    for (const to of ['split', 'merge']) assert.match(m1, new RegExp(`^flannel_dataplane_thread_switches_total\\{to="${to}"\\} \\d+$`, 'm'));
    assert.match(m1, new RegExp(`^flannel_peer_last_seen_timestamp_seconds\\{peer="${peer.replace(/\./g, '\\.')}"\\} \\d+(\\.\\d+)?$`, 'm'));
    assert.match(m1, /^flannel_lease_info\{subnet="198\.19\.\d+\.0\/24",ipv6_subnet="",backend="udp"\} 1$/m);
    assert.ok(value(m1, txRe) - value(m0, txRe) >= 10, `tx ${value(m0, txRe)} -> ${value(m1, txRe)}`);
    assert.ok(value(m1, noRouteRe) - value(m0, noRouteRe) >= 3, `no_route ${value(m0, noRouteRe)} -> ${value(m1, noRouteRe)}`);
  });

  test('a flood of garbage and spoofed datagrams is counted, not logged, and real traffic goes on', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, b] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0]];
    const logLines = (): number => lab.daemonLog(a).split('\n').length;
    const drops = async (): Promise<number> => Object.values((await fetchStatus(lab.statusSocket(a))).drops ?? {}).reduce((x, y) => x + y, 0);
    const lines0 = logLines();
    const drops0 = await drops();
    const seed = icmpEcho(b.podIP, a.podIP).toString('hex');
    // From a real peer's address (malformed and mutated packets) and from an address that is no peer.
    b.ns.exec(process.execPath, [udpTool, 'garbage', b.underlayIP, a.underlayIP, '8285', '3000', '7', seed], { timeoutMs: 60_000 });
    lab.underlayNs().exec(process.execPath, [udpTool, 'garbage', '198.18.0.1', a.underlayIP, '8285', '2000', '11', seed], { timeoutMs: 60_000 });
    // Sent, but the engine may not have drained its socket yet on a loaded machine: wait for the count.
    let dropped = 0;
    for (const deadline = Date.now() + 10_000; (dropped = (await drops()) - drops0) < 2000 && Date.now() < deadline; ) await sleep(100);
    assert.ok(dropped >= 2000, `only ${dropped} drops counted`);
    assert.ok(logLines() - lines0 <= 5, `${logLines() - lines0} new log lines for ${dropped} bad datagrams`);
    const r = await lab.ping(b, a, 4, a.podIP, 3);
    assert.ok(r.ok, r.detail);
  });

  test('logs are klog lines with flannel\'s milestones', (t) => {
    if (!need(t, rootAndNetns())) return;
    const lines = lab.daemonLog(lab.nodes[0]!).split('\n');
    for (const l of lines) assert.match(l, /^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d{6} +\d+ [\w.-]+:\d+\] /, l);
    const text = lines.join('\n');
    assert.match(text, /Found network config - Backend type: udp/);
    assert.match(text, /Using interface with name eth0 and address 198\.18\.0\.11/);
    assert.match(text, /Allocated lease \(ip: 198\.19\.\d+\.0\/24 ipv6: ::\/0\) to current node \(198\.18\.0\.11\)/);
    assert.match(text, /Wrote subnet file to /);
  });

  test('a lease deleted from etcd disappears from the peers: ICMP net unreachable', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, , c] = lab.nodes as [typeof lab.nodes[0], typeof lab.nodes[0], typeof lab.nodes[0]];
    await lab.stopDaemon(c);
    await lab.etcdDelete(`${LAB_ETCD_PREFIX}/subnets/${c.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0-24')}`);
    let out = '';
    for (let i = 0; i < 30 && !NET_UNREACHABLE.test(out); i++) {
      out = firstFailure(await echoes(a.pod, c.podIP, { count: 1 }));
      if (!/unreachable/.test(out)) await sleep(200);
    }
    assert.match(out, NET_UNREACHABLE);
    assert.match(lab.daemonLog(a), /Lease removed: 198\.19\.\d+\.0\/24/);
  });

  test('SIGTERM: clean exit, lease kept in etcd, TUN gone', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const b = lab.nodes[1]!;
    const pid = b.pid!;
    const start = Date.now();
    process.kill(pid, 'SIGTERM');
    let alive = true;
    // A bound for a hang, not a speed target: shutdown runs iptables-save and iptables-restore to remove
    // its rules, which a loaded machine can make take more than the 1 s this once asserted.
    while (alive && Date.now() - start < 10_000) {
      try {
        process.kill(pid, 0);
        await sleep(20);
      } catch {
        alive = false;
      }
    }
    const took = Date.now() - start;
    assert.ok(!alive, `still running ${took} ms after SIGTERM`);
    t.diagnostic(`exited ${took} ms after SIGTERM`);
    b.pid = undefined;
    assert.match(readFileSync(join(b.dir, 'flanneld.log'), 'utf8'), /Exiting cleanly\.\.\./);
    const key = `${LAB_ETCD_PREFIX}/subnets/${b.subnetEnv.FLANNEL_SUBNET!.replace(/\.1\/24$/, '.0-24')}`;
    assert.ok(lab.etcdList(key).length === 1, 'lease still in etcd after a clean stop');
    assert.doesNotMatch(b.ns.ip('-o', 'link', 'show'), /flannel0/);
  });
});
