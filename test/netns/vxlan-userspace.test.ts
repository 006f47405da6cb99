// A vxlan cluster where one node's kernel "has no VXLAN": two daemons with kernel vxlan devices and one
// whose device creation is refused (failpoint: EOPNOTSUPP, what a kernel without the module answers),
// so it falls back to the userspace VTEP. IPv4 + IPv6. The kernel nodes see an ordinary vxlan peer.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Lab, LabNode } from '../../src/lab/lab.js';
import { fetchStatus, type StatusSnapshot } from '../../src/status.js';
import { vxlanEncap } from '../../src/native/vxlan.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { echoes, summary } from '../helpers/echo.js';
import { useLab } from '../helpers/lab.js';
import { assertAllPairs, assertTcpTransfers, eventually, fdbOn, leaseText, macOf, neighsOn, subnetAddr } from '../helpers/lab-probe.js';
import { sleep } from '../../src/util/sleep.js';
import { icmpEcho, ipv4, udp, v4Bytes } from '../helpers/packets.js';
import { ethernetFrames, readPcap } from '../helpers/pcap-read.js';

const here = dirname(fileURLToPath(import.meta.url));
const udpTool = join(here, '..', 'fixtures', 'udp-tool.js');
const flannelctl = join(here, '..', '..', 'src', 'cli', 'flannelctl.js');
const reqs = [rootAndNetns(), binary('bridge')];
/** The tests that read the underlay with tcpdump. */
const wire = [...reqs, binary('tcpdump')];

/** tcpdump on a node's underlay interface into a pcap file; stop() returns the file's bytes. */
async function capture(node: LabNode, filter: string): Promise<{ stop: () => Promise<Buffer> }> {
  const dir = mkdtempSync(join(tmpdir(), 'flannelts-vtep-pcap-'));
  const file = join(dir, 'c.pcap');
  const child: ChildProcess = node.ns.spawn('tcpdump', ['-i', 'eth0', '-U', '-n', '-s', '0', '-w', file, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  // tcpdump says "listening on eth0" once the capture is live.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('tcpdump did not start')), 10_000);
    child.stderr?.on('data', (d: Buffer) => {
      if (d.toString().includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`tcpdump exited with ${code}`)));
  });
  return {
    stop: async () => {
      await sleep(1000);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
      const bytes = readFileSync(file);
      rmSync(dir, { recursive: true, force: true });
      return bytes;
    },
  };
}

describe('userspace VXLAN VTEP in a kernel vxlan cluster (fallback), IPv4 + IPv6', suiteNeeds(...reqs), () => {
  let lab: Lab;
  useLab(
    {
      nodes: 3,
      backend: 'vxlan',
      ipv6: true,
      startTimeoutSec: 30,
      nodeEnv: (i): Record<string, string> => (i === 2 ? { FLANNELTS_FAILPOINTS: 'vxlan-link-create=EOPNOTSUPP' } : {}),
    },
    (l) => (lab = l),
  );
  const nodes = (): [LabNode, LabNode, LabNode] => lab.nodes as [LabNode, LabNode, LabNode];
  const status = (n: LabNode): Promise<StatusSnapshot> => fetchStatus(lab.statusSocket(n));

  test('the refused node falls back (logged), advertises a vxlan lease, and kernel peers install their usual entries for it', async (t) => {
    if (!need(t, ...reqs)) return;
    const [n1, n2, n3] = nodes();
    assert.match(lab.daemonLog(n3), /EOPNOTSUPP.*falling back to the userspace VXLAN VTEP/);
    assert.match(lab.daemonLog(n3), /userspace VTEP flannel\.1 up, MTU 1430, VNI 1, port 8472/);
    assert.match(n3.ns.ip('-d', 'link', 'show', 'flannel.1'), /tun type tun/, 'a TUN, not a vxlan device');
    assert.equal(n3.subnetEnv.FLANNEL_MTU, '1430');
    const s = await status(n3);
    assert.equal(s.mode, 'userspace');
    const mac = s.vtep?.mac;
    assert.ok(mac);
    assert.ok(leaseText(lab, n3).includes(`"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"},"BackendV6Data":{"VNI":1,"VtepMAC":"${mac}"}`), leaseText(lab, n3));
    for (const k of [n1, n2]) {
      assert.ok(neighsOn(k, 'flannel.1').includes(`${subnetAddr(n3.subnetEnv.FLANNEL_SUBNET!)} lladdr ${mac} PERMANENT`), neighsOn(k, 'flannel.1').join('\n'));
      assert.ok(fdbOn(k, 'flannel.1').includes(`${mac} dst ${n3.underlayIP} self permanent`));
      assert.ok(fdbOn(k, 'flannel-v6.1').includes(`${mac} dst ${n3.underlayIPv6!} self permanent`));
    }
  });

  test('all pod pairs reach each other over IPv4 and IPv6', async (t) => {
    if (!need(t, ...reqs)) return;
    await assertAllPairs(lab, 12);
  });

  test('TCP transfers keep their content both ways between the userspace node and each kernel node, IPv4 and IPv6', async (t) => {
    if (!need(t, ...reqs)) return;
    const [n1, n2, n3] = nodes();
    await assertTcpTransfers([
      [n3, n1],
      [n1, n3],
      [n3, n2],
      [n2, n3],
    ]);
    const s = await status(n3);
    assert.ok((s.totals?.tx.bytes ?? 0) > 16 << 20 && (s.totals?.rx.bytes ?? 0) > 16 << 20, JSON.stringify(s.totals));
  });

  test('frames on the underlay are standard VXLAN: port 8472, I flag, VNI 1, our VtepMAC to the peer device MAC; source port varies per flow', async (t) => {
    if (!need(t, ...wire)) return;
    const [n1, , n3] = nodes();
    const ourMac = (await status(n3)).vtep!.mac!;
    const cap = await capture(n1, `udp and src host ${n3.underlayIP} or src host ${n3.underlayIPv6!}`);
    for (const to of [n1.podIP, n1.podIPv6!]) {
      const r = await echoes(n3.pod, to, { count: 2, intervalMs: 200 });
      assert.ok(r.received >= 1, `${to}: ${summary(r)}`);
    }
    // Eight UDP flows (a new source port each) from pod 3 to pod 1.
    for (let i = 0; i < 8; i++) n3.pod.exec(process.execPath, [udpTool, 'send', n3.podIP, n1.podIP, '9', '666c6f77']);
    const frames = ethernetFrames(readPcap(await cap.stop()).packets);
    const vx = frames.filter((f) => f.udp?.dstPort === 8472);
    assert.ok(vx.length >= 8, `captured ${vx.length} VXLAN datagrams`);
    const v4Dev = macOf(n1, 'flannel.1');
    const v6Dev = macOf(n1, 'flannel-v6.1');
    let pings4 = 0;
    let pings6 = 0;
    const flowPorts = new Set<number>();
    for (const f of vx) {
      const p = f.udp!.payload;
      assert.equal(p[0], 0x08, 'flags: I only');
      assert.equal(p.readUIntBE(1, 3), 0, 'reserved');
      assert.equal(p.readUIntBE(4, 3), 1, 'VNI');
      assert.equal(p[7], 0, 'reserved');
      const dst = [...p.subarray(8, 14)].map((b) => b.toString(16).padStart(2, '0')).join(':');
      const src = [...p.subarray(14, 20)].map((b) => b.toString(16).padStart(2, '0')).join(':');
      const type = p.readUInt16BE(20);
      assert.equal(src, ourMac);
      assert.equal(dst, type === 0x86dd ? v6Dev : v4Dev, 'inner destination: the peer device MAC of the inner family');
      assert.equal(f.outerFamily, type === 0x86dd ? 6 : 4, 'IPv6 inner packets over the IPv6 underlay, as flannel-v6.1');
      const inner = p.subarray(22);
      if (type === 0x0800 && inner[9] === 1) pings4++;
      if (type === 0x86dd && inner[6] === 58) pings6++;
      if (type === 0x0800 && inner[9] === 17) flowPorts.add(f.udp!.srcPort);
      if (type === 0x0800 && (inner[9] === 1 || inner[9] === 17)) assert.equal([...inner.subarray(12, 16)].join('.'), n3.podIP);
    }
    assert.ok(pings4 >= 1 && pings6 >= 1, `pings seen v4 ${pings4} v6 ${pings6}`);
    assert.ok(flowPorts.size >= 2, `8 UDP flows left from ${flowPorts.size} outer source port(s)`);
  });

  test('bad frames from a peer are dropped and counted by reason; an ARP request for the VTEP address is answered', async (t) => {
    if (!need(t, ...wire)) return;
    const [n1, , n3] = nodes();
    const ourMac = (await status(n3)).vtep!.mac!;
    const peerMac = macOf(n1, 'flannel.1');
    const inner = ipv4({ src: n1.podIP, dst: n3.podIP, proto: 1, payload: icmpEcho(8, 77, 1, Buffer.from('bad')) });
    const good = vxlanEncap(1, ourMac, peerMac, inner);
    const ethertype = Buffer.from(good);
    ethertype.writeUInt16BE(0x88cc, 20);
    const arpReq = Buffer.concat([
      Buffer.from([0, 1, 8, 0, 6, 4, 0, 1]),
      Buffer.from(peerMac.replace(/:/g, ''), 'hex'),
      v4Bytes(subnetAddr(n1.subnetEnv.FLANNEL_SUBNET!)),
      Buffer.alloc(6),
      v4Bytes(subnetAddr(n3.subnetEnv.FLANNEL_SUBNET!)),
    ]);
    const arpFrame = vxlanEncap(1, 'ff:ff:ff:ff:ff:ff', peerMac, arpReq);
    arpFrame.writeUInt16BE(0x0806, 20);
    const bad = {
      wrong_vni: vxlanEncap(2, ourMac, peerMac, inner),
      unknown_mac: vxlanEncap(1, ourMac, '02:de:ad:be:ef:01', inner),
      wrong_dst_mac: vxlanEncap(1, '02:de:ad:be:ef:02', peerMac, inner),
      bad_ethertype: ethertype,
      malformed: good.subarray(0, 10),
    };
    const before = await status(n3);
    const cap = await capture(n1, `udp and src host ${n3.underlayIP}`);
    // flannelctl capture on the VTEP node shows the wrong-VNI frames' inner packets with their reason.
    const pcapDir = mkdtempSync(join(tmpdir(), 'flannelts-vtep-capture-'));
    const pcapFile = join(pcapDir, 'drops.pcapng');
    const run = spawn(process.execPath, [flannelctl, 'capture', '--socket', lab.statusSocket(n3), '-w', pcapFile, '--reason', 'wrong_vni', '--count', '3', '--duration', '30'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let runErr = '';
    run.stderr?.on('data', (d: Buffer) => (runErr += d.toString()));
    const runExit = new Promise<number | null>((r) => run.once('exit', r));
    assert.ok(await eventually(() => /capturing on flannel\.1/.test(runErr), 10_000, 50), `capture did not start: ${runErr}`);
    const datagrams = Object.values(bad).flatMap((b) => [b, b, b]).map((b) => b.toString('hex')).join(',');
    n1.ns.exec(process.execPath, [udpTool, 'send', n1.underlayIP, n3.underlayIP, '8472', datagrams]);
    n1.ns.exec(process.execPath, [udpTool, 'send', n1.underlayIP, n3.underlayIP, '8472', arpFrame.toString('hex')]);
    let after = before;
    for (let i = 0; i < 50 && (after.vtep?.arpReplies ?? 0) === (before.vtep?.arpReplies ?? 0); i++) {
      await sleep(100);
      after = await status(n3);
    }
    await sleep(200);
    after = await status(n3);
    for (const reason of Object.keys(bad)) {
      assert.equal((after.drops?.[reason] ?? 0) - (before.drops?.[reason] ?? 0), 3, `${reason}: ${JSON.stringify(after.drops)}`);
    }
    try {
      assert.equal(await runExit, 0, runErr);
      const dropped = readPcap(readFileSync(pcapFile));
      assert.equal(dropped.packets.length, 3);
      for (const pkt of dropped.packets) {
        assert.match(pkt.comment ?? '', /^drop reason=wrong_vni dir=rx/);
        assert.equal(pkt.data.toString('hex'), inner.toString('hex'), 'the inner packet the frame carried');
      }
    } finally {
      if (run.exitCode === null && run.pid) process.kill(run.pid, 'SIGKILL');
      rmSync(pcapDir, { recursive: true, force: true });
    }
    assert.equal((after.vtep?.arpReplies ?? 0) - (before.vtep?.arpReplies ?? 0), 1, `ARP not answered: ${JSON.stringify(after.drops)} ${JSON.stringify(after.vtep)}`);
    // The reply on the wire: to the requester's VTEP port, an Ethernet ARP reply from our VtepMAC.
    const replies = ethernetFrames(readPcap(await cap.stop()).packets).filter((f) => f.udp?.dstPort === 8472 && f.udp.payload.readUInt16BE(20) === 0x0806);
    assert.equal(replies.length, 1);
    const arp = replies[0]!.udp!.payload.subarray(22);
    assert.equal(arp.readUInt16BE(6), 2, 'opcode reply');
    assert.equal(arp.subarray(8, 14).toString('hex'), ourMac.replace(/:/g, ''));
    assert.deepEqual([...arp.subarray(14, 18)].join('.'), subnetAddr(n3.subnetEnv.FLANNEL_SUBNET!));
    assert.equal(arp.subarray(18, 24).toString('hex'), peerMac.replace(/:/g, ''));
    // Real traffic is unaffected.
    await assertAllPairs(lab, undefined, 1);
  });

  test('4,000 random and mutated VXLAN datagrams while pods ping: all accounted for, no crash, no ping lost', async (t) => {
    if (!need(t, ...reqs)) return;
    const [n1, , n3] = nodes();
    const ourMac = (await status(n3)).vtep!.mac!;
    const valid = vxlanEncap(1, ourMac, macOf(n1, 'flannel.1'), ipv4({ src: n1.podIP, dst: n3.podIP, proto: 17, payload: udp(1, 9, Buffer.alloc(40, 1)) }));
    const COUNT = 4000;
    const before = await status(n3);
    const ping = echoes(n1.pod, n3.podIP, { count: 30, intervalMs: 100, timeoutMs: 2000 });
    n1.ns.exec(process.execPath, [udpTool, 'garbage', n1.underlayIP, n3.underlayIP, '8472', String(COUNT), '7', valid.toString('hex')], { timeoutMs: 60_000 });
    const accounted = (s: StatusSnapshot): number =>
      Object.entries(s.drops ?? {}).reduce((n, [k, v]) => n + v - (before.drops?.[k] ?? 0), 0) +
      (s.totals?.rx.packets ?? 0) - (before.totals?.rx.packets ?? 0) +
      (s.vtep?.arpReplies ?? 0) - (before.vtep?.arpReplies ?? 0);
    let after = before;
    for (let i = 0; i < 50 && accounted(after) < COUNT; i++) {
      await sleep(200);
      after = await status(n3);
    }
    t.diagnostic(`drops: ${JSON.stringify(after.drops)}`);
    assert.ok(accounted(after) >= COUNT, `every datagram delivered or dropped with a reason: ${accounted(after)} of ${COUNT}`);
    assert.ok((after.drops?.malformed ?? 0) - (before.drops?.malformed ?? 0) >= COUNT / 4);
    const pinged = await ping;
    assert.deepEqual([pinged.sent, pinged.received], [30, 30], summary(pinged));
  });
});
