// Our wireguard node (userspace WireGuard: this kernel has none) against a node built from Debian's
// wireguard-go + wg, configured exactly as flannel's backend configures its device, its lease in etcd
// as stock flanneld writes it (test/helpers/wg-interop-lab.ts): handshakes started by either side,
// ping (our prober), 8 MiB TCP with sha256 both ways, IPv4 and IPv6 (separate and ipv6 modes), PSK,
// keepalives on the wire, a rekey under the timing test hook, peer removal, and an underlay capture in
// which every datagram is WireGuard and no inner packet shows.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab, LabNode } from '../../src/lab/lab.js';
import type { WgCounters } from '../../src/native/wireguard.js';
import { run } from '../../src/lab/netns.js';
import { probe, reachable } from '../../src/probe/prober.js';
import { fetchStatus } from '../../src/status.js';
import { sleep } from '../../src/util/sleep.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { assertTcpTransfers, eventually } from '../helpers/lab-probe.js';
import { ethernetFrames, readPcap } from '../helpers/pcap-read.js';
import { configurePeersFromLeases, interopLab, type InteropOptions, type TheirSide } from '../helpers/wg-interop-lab.js';

const PSK = '9qyPTtxTrXRVX7Ojs8n8/dnU/g8pH21rt1bNF5HvLRs=';
const prereqs = [rootAndNetns(), binary('wireguard-go'), binary('wg'), binary('etcd'), binary('nsenter')];

/** `wg show all dump` inside our daemon's namespaces (what `flannelctl lab exec n1 wg show` runs). */
function ourDump(n: LabNode): string[][] {
  return run('nsenter', ['-t', String(n.pid), '-m', '-n', 'wg', 'show', 'all', 'dump'])
    .trim()
    .split('\n')
    .map((l) => l.split('\t'));
}

async function counters(lab: Lab, n: LabNode): Promise<WgCounters> {
  const s = await fetchStatus(lab.statusSocket(n));
  assert.ok(s.wireguard?.counters, 'userspace counters in status');
  return s.wireguard.counters as WgCounters;
}

/**
 * Each family's pod address answers within 10 s: a pod attached a moment ago may still be finishing
 * IPv6 duplicate address detection on its link (about a second in which its node cannot resolve it).
 */
async function assertReach(from: LabNode, to: LabNode, families: Array<4 | 6>): Promise<void> {
  for (const f of families) {
    const target = f === 4 ? to.podIP : to.podIPv6!;
    const deadline = Date.now() + 10_000;
    let r = await reachable({ netns: from.pod.name, target, attempts: 3, intervalMs: 300, timeoutMs: 1500 });
    while (!r.ok && Date.now() < deadline) r = await reachable({ netns: from.pod.name, target, attempts: 3, intervalMs: 300, timeoutMs: 1500 });
    assert.ok(r.ok, `${from.name} pod -> ${to.name} pod ${target}: ${r.ok ? '' : r.detail}`);
  }
}

/** Every device of their side; `wg show <dev> dump` peer lines. */
const theirDevs = (t: TheirSide) => Object.values(t.devs).filter((d) => d !== undefined);

/** Their side forgets the session (the peer removed and set again from the leases): their next packet starts a handshake. */
function theirSessionsReset(lab: Lab, t: TheirSide, o: InteropOptions, ourKey: string): void {
  for (const d of theirDevs(t)) d.removePeer(ourKey);
  configurePeersFromLeases(lab, t, o);
}

type Datagram = { srcPort: number; dstPort: number; payload: Buffer };

/** A transport message's length: header and tag around plaintext padded to 16, or to the device MTU (1420). */
const transportLength = (n: number): boolean => n >= 32 && ((n - 32) % 16 === 0 || n - 32 === 1420);

/** A captured UDP payload as the datagrams it was sent as: transport messages of one length, the last shorter. */
function splitGso(u: Datagram): Datagram[] {
  const p = u.payload;
  if (p.length <= 32 + 1420 || p.readUInt32LE(0) !== 4) return [u];
  for (let len = 48; len < p.length; len++) {
    if (!transportLength(len)) continue;
    const offsets: number[] = [];
    for (let at = 0; at < p.length; at += len) offsets.push(at);
    if (!transportLength(p.length - offsets[offsets.length - 1]!)) continue;
    if (offsets.every((at) => p.subarray(at, at + 8).equals(p.subarray(0, 8)))) return offsets.map((at) => ({ ...u, payload: p.subarray(at, Math.min(at + len, p.length)) }));
  }
  return [u];
}

function ourPublicKey(n: LabNode): string {
  return ourDump(n)[0]![2]!; // the device line: name, private key, public key, port, fwmark
}

for (const o of [
  { name: 'separate mode, IPv4 + IPv6, PSK', mode: 'separate', ipv6: true, psk: PSK },
  { name: 'ipv6 mode, IPv4 + IPv6 inside, ListenPortV6 = ListenPort', mode: 'ipv6', ipv6: true, listenPortV6: 51820 },
] as const) {
  describe(`wireguard interop with wireguard-go: ${o.name}`, suiteNeeds(...prereqs), () => {
    test('handshake either side first, ping, 8 MiB TCP both ways, status and wg show, peer removal', { timeout: 180_000 }, async (t) => {
      if (!need(t, ...prereqs)) return;
      const { lab, ours, theirs, cleanup } = await interopLab(o);
      try {
        const them = theirs();
        const fam: Array<4 | 6> = [4, 6];
        // Ours first: nobody has a session; our first packet waits for the handshake we start.
        await assertReach(ours, them.node, fam);
        const c1 = await counters(lab, ours);
        assert.ok(c1.response >= 1, `we initiated: ${JSON.stringify(c1)}`);
        for (const d of theirDevs(them)) assert.ok(Number(d.dump()[1]![4]) > 0, `${d.o.name}: latest handshake set on their side`);
        // Theirs first: they forget the session; their packet starts the next handshake.
        const key = ourPublicKey(ours);
        theirSessionsReset(lab, them, o, key);
        await assertReach(them.node, ours, fam);
        const c2 = await counters(lab, ours);
        assert.ok(c2.initiation > c1.initiation, `they initiated: ${JSON.stringify(c2)}`);
        await assertTcpTransfers([
          [ours, them.node],
          [them.node, ours],
        ]);
        // status --json: their peer with a handshake and bytes; wg show in our daemon's namespaces.
        const s = await fetchStatus(lab.statusSocket(ours));
        const peer = s.wireguard!.peers.find((p) => p.publicKey === them.publicKey)!;
        assert.ok(peer && peer.latestHandshake !== 'never' && peer.rxBytes > 8 << 20 && peer.txBytes > 8 << 20, JSON.stringify(peer));
        const dump = ourDump(ours);
        assert.ok(dump.some((l) => l[1] === them.publicKey && Number(l[5]) > 0), `wg show sees their peer: ${JSON.stringify(dump)}`);
        if (o.mode === 'separate') assert.deepEqual(s.wireguard!.devices.map((d) => d.name), ['flannel-wg', 'flannel-wg-v6']);
        assert.equal(s.wireguard!.counters!.decrypt_failed, 0);
        // Peer removal: their lease goes, our daemon removes the peer; nothing routes there any more.
        await lab.etcdDelete(them.leaseKey);
        assert.ok(await eventually(() => !ourDump(ours).some((l) => l[1] === them.publicKey), 15_000), 'peer removed from our device');
        const gone = await reachable({ netns: ours.pod.name, target: them.node.podIP, attempts: 2, intervalMs: 200, timeoutMs: 1000 });
        assert.equal(gone.ok, false);
      } finally {
        await cleanup();
      }
    });
  });
}

describe('wireguard interop with wireguard-go: flannel\'s ListenPortV6 quirk in ipv6 mode', suiteNeeds(...prereqs), () => {
  test('default ports: the stock node dials the port our lease advertises (51821) and we answer there', { timeout: 120_000 }, async (t) => {
    if (!need(t, ...prereqs)) return;
    const o = { mode: 'ipv6', ipv6: true } as const;
    const { lab, ours, theirs, cleanup } = await interopLab(o);
    try {
      const them = theirs();
      // Their device listens on ListenPort (51820) only, as flannel's does; our lease says 51821.
      assert.match(them.devs.single!.wg(['show', 'flannel-wg', 'endpoints']), /:51821/);
      await assertReach(them.node, ours, [6, 4]);
      const c = await counters(lab, ours);
      assert.ok(c.initiation >= 1, 'their handshake reached us on 51821');
      // They now know where we are (51820, our replies' source): traffic from us flows too.
      await assertReach(ours, them.node, [6]);
      assert.match(them.devs.single!.wg(['show', 'flannel-wg', 'endpoints']), /:51820/, 'they roamed to our listening port');
    } finally {
      await cleanup();
    }
  });
});

describe('wireguard interop with wireguard-go: keepalives, a rekey, and what the underlay sees', suiteNeeds(...prereqs, binary('tcpdump')), () => {
  test('PersistentKeepaliveInterval on the wire both ways; a rekey under FLANNELTS_WG_TIMING_SCALE keeps every ping; only WireGuard datagrams, no inner packet in clear', { timeout: 180_000 }, async (t) => {
    if (!need(t, ...prereqs, binary('tcpdump'))) return;
    // Scale 10: our REKEY_AFTER_TIME is 12 s, our keepalive interval 100 ms; wireguard-go keeps real time.
    const o = { mode: 'separate', ipv6: false, psk: PSK, keepalive: 1, timingScale: 10 } as const;
    const { lab, ours, theirs, cleanup } = await interopLab(o);
    const dir = mkdtempSync(join(tmpdir(), 'flannelts-wgcap-'));
    const pcap = join(dir, 'underlay.pcap');
    const dump = spawn('ip', ['netns', 'exec', lab.underlayNs().name, 'tcpdump', '-i', 'br0', '-U', '-w', pcap, 'udp'], { stdio: 'ignore' });
    try {
      const them = theirs();
      await sleep(500); // tcpdump attached
      await assertReach(ours, them.node, [4]);
      const before = them.devs.v4!.dump()[1]![4];
      // 15 s of pings across the rekey at 12 s; a marker payload that must never show in clear.
      const r = await probe({ netns: ours.pod.name, target: them.node.podIP, count: 75, intervalMs: 200, timeoutMs: 2000 });
      assert.equal(r.received, r.sent, `no ping lost across the rekey: ${JSON.stringify(r.failures.slice(0, 3))}`);
      await assertTcpTransfers([[ours, them.node]], 1 << 20);
      const c = await counters(lab, ours);
      assert.ok(c.response >= 2, `rekeyed: ${c.response} handshakes we initiated`);
      assert.notEqual(them.devs.v4!.dump()[1]![4], before, 'their latest handshake moved');
      assert.ok(c.keepalive_sent > 0 && c.keepalive > 0, `keepalives both ways: sent ${c.keepalive_sent}, received ${c.keepalive}`);
      await sleep(1500); // a quiet second: persistent keepalives only
      dump.kill('SIGINT');
      await new Promise((res) => dump.once('exit', res));
      const frames = ethernetFrames(readPcap(readFileSync(pcap)).packets);
      const v4 = (ip: string) => ip.split('.').map(Number);
      const innerPairs = [Buffer.from([...v4(ours.podIP), ...v4(them.node.podIP)]), Buffer.from([...v4(them.node.podIP), ...v4(ours.podIP)])];
      // Between namespaces a UDP_SEGMENT send stays one super-datagram on the wire: cut it back into its
      // transport messages (equal size, each with the run's header prefix) before looking at each.
      const udp = frames.filter((f) => f.udp).flatMap((f) => splitGso(f.udp!));
      assert.ok(udp.length > 150, `${udp.length} datagrams captured`);
      for (const u of udp) {
        const type = u.payload.length >= 4 ? u.payload.readUInt32LE(0) : -1;
        assert.ok(type >= 1 && type <= 4, `a WireGuard message: ${u.payload.subarray(0, 8).toString('hex')}`);
        if (type === 4) assert.ok(transportLength(u.payload.length), `transport message length ${u.payload.length}`);
        else assert.equal(u.payload.length, { 1: 148, 2: 92, 3: 64 }[type as 1 | 2 | 3]);
        // No inner IPv4 header in clear: the pods' address pair never appears in a payload.
        assert.ok(!innerPairs.some((p) => u.payload.includes(p)), 'no inner header in clear');
      }
      // Keepalives are the empty transport messages (32 bytes); the counters above say which way.
      const keepalives = udp.filter((u) => u.payload.length === 32 && u.payload.readUInt32LE(0) === 4);
      assert.ok(keepalives.length >= 2, `keepalives on the wire: ${keepalives.length}`);
      assert.ok(udp.some((u) => u.payload.readUInt32LE(0) === 1) && udp.some((u) => u.payload.readUInt32LE(0) === 2), 'handshakes on the wire');
    } finally {
      if (dump.exitCode === null) dump.kill('SIGKILL');
      await cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
