// A 3-node lab of ours with the wireguard backend (userspace WireGuard: this kernel has none), IPv4 and
// IPv6 in flannel's default separate mode: every pod pair, `flannelctl lab exec nN wg show` seeing each
// node's own devices, status, and 20,000 random and mutated datagrams at a node while pods ping; and
// two nodes in each single-device Mode.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../src/lab/lab.js';
import { probe } from '../../src/probe/prober.js';
import { fetchStatus } from '../../src/status.js';
import { unaccountedDatagrams } from '../../src/backend/wireguard/counters.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { useLab } from '../helpers/lab.js';
import { assertAllPairs } from '../helpers/lab-probe.js';
import { sleep } from '../../src/util/sleep.js';

const here = dirname(fileURLToPath(import.meta.url));
const flannelctl = join(here, '..', '..', 'src', 'cli', 'flannelctl.js');
const udpTool = join(here, '..', 'fixtures', 'udp-tool.js');

describe('wireguard lab: 3 nodes of ours, IPv4 + IPv6', suiteNeeds(rootAndNetns()), () => {
  let lab: Lab;
  useLab({ nodes: 3, backend: 'wireguard', ipv6: true }, (l) => (lab = l));

  test('every pod pair, both families', async (t) => {
    if (!need(t, rootAndNetns())) return;
    await assertAllPairs(lab, 12);
  });

  test('flannelctl lab exec nN wg show: each node its own devices and two peers on each, with handshakes; status shows them', async (t) => {
    if (!need(t, rootAndNetns(), binary('wg'), binary('nsenter'))) return;
    lab.saveState();
    const keys = new Set<string>();
    for (const n of lab.nodes) {
      const r = spawnSync(process.execPath, [flannelctl, 'lab', 'exec', n.ns.name, 'wg', 'show', 'all', 'dump'], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stdout.trim().split('\n').map((l) => l.split('\t'));
      const devices = lines.filter((l) => l.length === 5);
      assert.deepEqual(devices.map((l) => l[0]).sort(), ['flannel-wg', 'flannel-wg-v6'], `${n.name}: ${r.stdout}`);
      assert.equal(new Set(devices.map((l) => l[2])).size, 1, 'one key for both devices');
      keys.add(devices[0]![2]!);
      const peers = lines.filter((l) => l.length === 9);
      assert.equal(peers.length, 4, `${n.name}: two peers per device`);
      assert.ok(peers.every((p) => Number(p[5]) > 0 && Number(p[6]) > 0), `${n.name}: every peer has shaken hands and sent: ${r.stdout}`);
      const s = await fetchStatus(lab.statusSocket(n));
      assert.equal(s.wireguard?.peers.length, 4);
      assert.ok(s.wireguard!.peers.every((p) => p.latestHandshake !== 'never'));
    }
    assert.equal(keys.size, 3, 'every node its own key');
    const text = spawnSync(process.execPath, [flannelctl, 'status', '--socket', lab.statusSocket(lab.nodes[0]!)], { encoding: 'utf8' }).stdout;
    assert.match(text, /backend wireguard \(Mode separate\)/);
    assert.match(text, /wireguard devices: flannel-wg \(userspace\), flannel-wg-v6 \(userspace\)/);
    assert.match(text, /wireguard drops: none/);
  });

  test('20,000 random and mutated datagrams at a node while pods ping: no ping lost, every datagram accounted', { timeout: 120_000 }, async (t) => {
    if (!need(t, rootAndNetns(), binary('tcpdump'))) return;
    const [n1, n2] = lab.nodes as [(typeof lab.nodes)[0], (typeof lab.nodes)[0]];
    // One real transport message on its way to n2, to mutate.
    const cap = spawn('ip', ['netns', 'exec', n2.ns.name, 'tcpdump', '-i', 'eth0', '-c', '1', '-U', '-w', '-', 'udp dst port 51820 and udp[8] = 4 and greater 100'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    cap.stdout!.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((r) => setTimeout(r, 500));
    await probe({ netns: n1.pod.name, target: n2.podIP, count: 3, intervalMs: 100, timeoutMs: 1000 });
    await new Promise((r) => cap.once('exit', r));
    const pcap = Buffer.concat(chunks);
    // Classic pcap: 24-byte file header, 16-byte record header, Ethernet 14, IPv4 20, UDP 8.
    const valid = pcap.subarray(24 + 16 + 14 + 20 + 8);
    assert.equal(valid.readUInt32LE(0), 4, 'a transport message');
    const before = (await fetchStatus(lab.statusSocket(n2))).wireguard!.counters!;
    const x = lab.addExternalHost('gx', '198.18.0.99');
    const flood = new Promise<number | null>((resolve) => {
      const c = x.spawn(process.execPath, [udpTool, 'garbage', '198.18.0.99', n2.underlayIP, '51820', '20000', '7', valid.toString('hex')]);
      c.once('exit', resolve);
    });
    const pings = await probe({ netns: n1.pod.name, target: n2.podIP, count: 100, intervalMs: 30, timeoutMs: 2000 });
    assert.equal(await flood, 0, 'the flood was sent');
    assert.equal(pings.received, pings.sent, `no ping lost: ${JSON.stringify(pings.failures.slice(0, 3))}`);
    // The handshake worker may still be draining its queue: wait until every datagram has an outcome.
    const counters = async () => (await fetchStatus(lab.statusSocket(n2))).wireguard!.counters!;
    let after = await counters();
    for (const end = Date.now() + 10_000; (unaccountedDatagrams(after) !== 0 || after.rx_datagrams! - before.rx_datagrams! < 20_000) && Date.now() < end; ) {
      await sleep(250);
      after = await counters();
    }
    assert.equal(unaccountedDatagrams(after), 0, `every datagram accounted: ${JSON.stringify(after)}`);
    assert.ok(after.rx_datagrams! - before.rx_datagrams! >= 20_000, `${after.rx_datagrams! - before.rx_datagrams!} datagrams seen`);
    for (const k of ['unknown_receiver', 'too_short']) assert.ok(after[k]! > before[k]!, `${k} counted`);
  });
});

for (const mode of ['auto', 'ipv4', 'ipv6'] as const) {
  describe(`wireguard lab: Mode ${mode}, 2 nodes of ours, IPv4 + IPv6 over one device`, suiteNeeds(rootAndNetns()), () => {
    let lab: Lab;
    useLab({ nodes: 2, backend: 'wireguard', ipv6: true, backendOptions: { Mode: mode } }, (l) => (lab = l));

    test('every pod pair, both families, one flannel-wg per node', async (t) => {
      if (!need(t, rootAndNetns())) return;
      await assertAllPairs(lab, 4);
      const s = await fetchStatus(lab.statusSocket(lab.nodes[0]!));
      assert.deepEqual(s.wireguard!.devices, [{ name: 'flannel-wg', kind: 'userspace' }]);
      assert.deepEqual(s.wireguard!.peers[0]!.allowedIPs.length, 2, 'both subnets on the one peer');
      // auto picks IPv4 for public 198.18.x addresses (not RFC 1918); ipv6 mode the advertised IPv6 port.
      assert.match(s.wireguard!.peers[0]!.endpoint ?? '', mode === 'ipv6' ? /^\[2001:db8::/ : /^198\.18\./);
    });
  });
}
