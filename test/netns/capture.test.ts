// flannelctl capture and per-peer "last seen" against a real 3-node udp lab: pcapng files parsed back
// (header, exact packet count, ICMP contents, direction, peer), dropped packets with their reasons
// while garbage and spoofed datagrams hit a node, tcpdump reading a file and a pipe, and the engine's
// capture switched off again when the count is reached or the client goes away.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab, LabNode } from '../../src/lab/lab.js';
import { fetchStatus } from '../../src/status.js';
import { binary, need, rootAndNetns, suiteNeeds } from '../helpers/prereq.js';
import { useLab } from '../helpers/lab.js';
import { eventually, subnetAddr } from '../helpers/lab-probe.js';
import { sleep } from '../../src/util/sleep.js';
import { icmpEcho, ipv4 } from '../helpers/packets.js';
import { readPcap, type ReadCapture } from '../helpers/pcap-read.js';
import { continuousEchoes, echoes, summary } from '../helpers/echo.js';

const here = dirname(fileURLToPath(import.meta.url));
const flannelctl = join(here, '..', '..', 'src', 'cli', 'flannelctl.js');
const udpTool = join(here, '..', 'fixtures', 'udp-tool.js');
const prereqs = [rootAndNetns(), binary('tcpdump')];

const subnetOf = (n: LabNode): string => `${subnetAddr(n.subnetEnv.FLANNEL_SUBNET!)}/24`;
const v4 = (b: Buffer, at: number): string => [...b.subarray(at, at + 4)].join('.');

/** A running `flannelctl capture`, stopped by PID in the test's finally if it is still there. */
class CaptureRun {
  readonly child: ChildProcess;
  stderr = '';
  stdout = '';
  readonly exited: Promise<number | null>;
  constructor(args: string[], shell = false) {
    this.child = shell ? spawn('sh', ['-c', args.join(' ')], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(process.execPath, [flannelctl, 'capture', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.exited = new Promise((r) => this.child.once('exit', (code) => r(code)));
  }
  /** Resolves once the daemon accepted the capture (the CLI says so on stderr). */
  async started(): Promise<void> {
    const ok = await eventually(() => /capturing on flannel0/.test(this.stderr), 10_000, 50);
    assert.ok(ok, `capture did not start: ${this.stderr}`);
  }
  async finished(ms = 20_000): Promise<number | null> {
    const t = setTimeout(() => this.kill(), ms);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid) process.kill(this.child.pid, 'SIGKILL');
  }
}

describe('flannelctl capture and last seen on a udp lab', suiteNeeds(rootAndNetns()), () => {
  let lab: Lab;
  let dir = '';
  before(() => (dir = mkdtempSync(join(tmpdir(), 'flannelts-capture-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));
  useLab({ nodes: 3, backend: 'udp', ipv6: false, startTimeoutSec: 30 }, (l) => (lab = l));
  const nodes = (): [LabNode, LabNode, LabNode] => lab.nodes as [LabNode, LabNode, LabNode];
  const sock = (n: LabNode): string => lab.statusSocket(n);
  /** A host on the underlay that is no peer (the file-store lab's bridge has no address of its own). */
  const stranger = (): string => {
    const ul = lab.underlayNs();
    if (!ul.ip('-4', 'addr', 'show', 'dev', 'br0').includes('198.18.0.1/')) ul.ip('addr', 'add', '198.18.0.1/24', 'dev', 'br0');
    return '198.18.0.1';
  };
  const captureActive = async (n: LabNode): Promise<boolean | undefined> => (await fetchStatus(sock(n))).capture?.active;

  test('status: every peer is "never" seen before traffic; after pings the pinged peer is seen now, the other still never', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, b, c] = nodes();
    const before = await fetchStatus(sock(a));
    assert.deepEqual(before.peers.map((p) => p.lastSeen), ['never', 'never']);
    const t0 = Date.now();
    const echoed = await echoes(a.pod, b.podIP, { count: 3, intervalMs: 200 });
    assert.ok(echoed.received >= 1, summary(echoed));
    const s = await fetchStatus(sock(a));
    const seen = Date.parse(s.peers.find((p) => p.publicIP === b.underlayIP)!.lastSeen!);
    assert.ok(seen >= t0 - 1500 && seen <= Date.now() + 1000, `lastSeen ${new Date(seen).toISOString()} not between the ping's start and now`);
    assert.equal(s.peers.find((p) => p.publicIP === c.underlayIP)?.lastSeen, 'never');
    // The human table and --json carry it too.
    const text = spawnSync(process.execPath, [flannelctl, 'status', '--socket', sock(a)], { encoding: 'utf8' }).stdout;
    assert.match(text, /LAST SEEN/);
    assert.match(text, new RegExp(`^${subnetOf(b).replace(/\./g, '\\.')} +${b.underlayIP.replace(/\./g, '\\.')} .* [0-9]+s ago$`, 'm')); // seconds, however slow the machine
    assert.match(text, new RegExp(`^${subnetOf(c).replace(/\./g, '\\.')} .* never$`, 'm'));
    const json = JSON.parse(spawnSync(process.execPath, [flannelctl, 'status', '--json', '--socket', sock(a)], { encoding: 'utf8' }).stdout) as { peers: Array<{ lastSeen: string }> };
    assert.ok(json.peers.some((p) => p.lastSeen === 'never') && json.peers.some((p) => /^\d{4}-\d\d-\d\dT/.test(p.lastSeen)));
  });

  test('capture --peer --count 10 while pinging two peers: pcapng with exactly 10 ICMP packets of that peer, both directions; tcpdump reads it', async (t) => {
    if (!need(t, ...prereqs)) return;
    const [a, b, c] = nodes();
    const file = join(dir, 'ping.pcapng');
    const run = new CaptureRun(['--socket', sock(a), '-w', file, '--peer', subnetOf(b), '--count', '10', '--duration', '30']);
    try {
      await run.started();
      assert.equal(await captureActive(a), true, 'status shows the running capture');
      // c pings a meanwhile: traffic of the other peer, which --peer leaves out.
      const fromC = continuousEchoes(c.pod, a.podIP, 50);
      const toB = await echoes(a.pod, b.podIP, { count: 12, intervalMs: 50, size: 100 });
      await fromC.stop();
      assert.ok(toB.received >= 1, summary(toB));
      assert.equal(await run.finished(), 0, run.stderr);
    } finally {
      run.kill();
    }
    assert.match(run.stderr, /10 packets captured, 0 lost to a full capture buffer \(count\)/);
    const cap: ReadCapture = readPcap(readFileSync(file));
    assert.equal(cap.format, 'pcapng');
    assert.equal(cap.linkType, 101);
    assert.equal(cap.ifName, 'flannel0');
    assert.equal(cap.packets.length, 10);
    const dirs = new Set<string>();
    for (const p of cap.packets) {
      assert.equal(p.data[0]! >> 4, 4);
      assert.equal(p.data[9], 1, 'ICMP');
      assert.equal(p.capturedLength, 128, 'IPv4 20 + ICMP 8 + 100 bytes of ping data');
      const [src, dst] = [v4(p.data, 12), v4(p.data, 16)];
      const type = p.data[20];
      const dir = /dir=(tx|rx)/.exec(p.comment ?? '')?.[1];
      assert.equal(p.comment, `dir=${dir} peer=${subnetOf(b)} via ${b.underlayIP}`);
      if (dir === 'tx') assert.deepEqual([src, dst, type, p.flags], [a.podIP, b.podIP, 8, 2], 'echo request out to b');
      else assert.deepEqual([src, dst, type, p.flags], [b.podIP, a.podIP, 0, 1], 'echo reply in from b');
      dirs.add(dir!);
    }
    assert.deepEqual([...dirs].sort(), ['rx', 'tx']);
    const r = spawnSync('tcpdump', ['-r', file, '-nn'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 10);
    assert.match(r.stdout, new RegExp(`IP ${a.podIP.replace(/\./g, '\\.')} > ${b.podIP.replace(/\./g, '\\.')}: ICMP echo request`));
    assert.match(r.stdout, new RegExp(`IP ${b.podIP.replace(/\./g, '\\.')} > ${a.podIP.replace(/\./g, '\\.')}: ICMP echo reply`));
    assert.equal(await captureActive(a), false, 'the count ended the engine capture');
  });

  test('capture -w - | tcpdump -r -: tcpdump decodes the stream', async (t) => {
    if (!need(t, ...prereqs)) return;
    const [a, b] = nodes();
    // Only b's packets: the kernel's own traffic into flannel0 (IPv6 router solicitations, repeated
    // with backoff after the link comes up) is a real no_route drop the engine rightly captures.
    const run = new CaptureRun([process.execPath, flannelctl, 'capture', '--socket', sock(a), '-w', '-', '--peer', subnetOf(b), '--count', '4', '--duration', '30', '|', 'tcpdump', '-r', '-', '-nn'], true);
    try {
      await run.started();
      const r = await echoes(a.pod, b.podIP, { count: 6, intervalMs: 50 });
      assert.ok(r.received >= 1, summary(r));
      assert.equal(await run.finished(), 0, run.stderr);
    } finally {
      run.kill();
    }
    const lines = run.stdout.trim().split('\n');
    assert.equal(lines.length, 4, run.stdout);
    for (const l of lines) assert.match(l, /IP 198\.19\.\d+\.\d+ > 198\.19\.\d+\.\d+: ICMP echo (request|reply)/);
    assert.match(run.stderr, /reading from file -, link-type RAW/);
  });

  test('capture --drops while garbage and spoofed datagrams hit the node: every packet is a drop with its reason', async (t) => {
    if (!need(t, ...prereqs)) return;
    const [a, b, c] = nodes();
    const file = join(dir, 'drops.pcapng');
    // From b's real address, inner source c's pod (not b's subnet): spoofed_source. From the underlay
    // host (no peer's address): garbage, dropped as malformed or unknown_peer.
    const spoofed = ipv4({ src: c.podIP, dst: a.podIP, proto: 1, payload: icmpEcho(8, 99, 1, Buffer.from('spoofed')) });
    const seed = ipv4({ src: b.podIP, dst: a.podIP, proto: 1, payload: icmpEcho(8, 98, 1, Buffer.from('seed')) }).toString('hex');
    const before = (await fetchStatus(sock(a))).drops!;
    const run = new CaptureRun(['--socket', sock(a), '-w', file, '--drops', '--direction', 'rx', '--count', '30', '--duration', '30']);
    try {
      await run.started();
      b.ns.exec(process.execPath, [udpTool, 'send', b.underlayIP, a.underlayIP, '8285', Array(10).fill(spoofed.toString('hex')).join(',')]);
      lab.underlayNs().exec(process.execPath, [udpTool, 'garbage', stranger(), a.underlayIP, '8285', '40', '5', seed]);
      assert.equal(await run.finished(), 0, run.stderr);
    } finally {
      run.kill();
    }
    const after = (await fetchStatus(sock(a))).drops!;
    assert.ok(after.spoofed_source! - before.spoofed_source! >= 10);
    const cap = readPcap(readFileSync(file));
    assert.equal(cap.packets.length, 30);
    const reasons = new Map<string, number>();
    for (const p of cap.packets) {
      const m = /^drop reason=(\w+) dir=rx peer=([\d.]+)$/.exec(p.comment ?? '');
      assert.ok(m, `comment ${p.comment}`);
      reasons.set(m[1]!, (reasons.get(m[1]!) ?? 0) + 1);
      if (m[1] === 'spoofed_source') {
        assert.equal(m[2], b.underlayIP, 'the peer that sent it');
        assert.deepEqual(p.data, spoofed, 'the dropped packet as it arrived');
      } else {
        assert.equal(m[2], '198.18.0.1');
        assert.ok(['malformed', 'unknown_peer'].includes(m[1]!), m[1]);
      }
    }
    assert.equal(reasons.get('spoofed_source'), 10, JSON.stringify([...reasons]));
    assert.equal(reasons.get('malformed')! + (reasons.get('unknown_peer') ?? 0), 20);
    const r = spawnSync('tcpdump', ['-r', file, '-nn'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`IP ${c.podIP.replace(/\./g, '\\.')} > ${a.podIP.replace(/\./g, '\\.')}: ICMP echo request, id 99`));
  });

  test('capture --reason keeps only that reason', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, b, c] = nodes();
    const file = join(dir, 'reason.pcapng');
    const spoofed = ipv4({ src: c.podIP, dst: a.podIP, proto: 1, payload: icmpEcho(8, 97, 1, Buffer.from('x')) });
    const run = new CaptureRun(['--socket', sock(a), '-w', file, '--reason', 'spoofed_source', '--count', '5', '--duration', '30']);
    try {
      await run.started();
      lab.underlayNs().exec(process.execPath, [udpTool, 'garbage', stranger(), a.underlayIP, '8285', '20', '9', spoofed.toString('hex')]);
      const r = await echoes(a.pod, b.podIP, { count: 3, intervalMs: 50 });
      assert.ok(r.received >= 1, summary(r));
      b.ns.exec(process.execPath, [udpTool, 'send', b.underlayIP, a.underlayIP, '8285', Array(8).fill(spoofed.toString('hex')).join(',')]);
      assert.equal(await run.finished(), 0, run.stderr);
    } finally {
      run.kill();
    }
    const cap = readPcap(readFileSync(file));
    assert.equal(cap.packets.length, 5);
    for (const p of cap.packets) assert.equal(p.comment, `drop reason=spoofed_source dir=rx peer=${b.underlayIP}`);
  });

  test('an unbounded capture ends when the client goes away: the engine capture is off, a new one can start', async (t) => {
    if (!need(t, rootAndNetns())) return;
    const [a, b] = nodes();
    const run = new CaptureRun(['--socket', sock(a), '-w', join(dir, 'killed.pcapng')]);
    try {
      await run.started();
      assert.equal(await captureActive(a), true);
      // One capture at a time: a second is refused with the reason, as one line.
      const second = spawnSync(process.execPath, [flannelctl, 'capture', '--socket', sock(a), '-w', join(dir, 'second.pcapng'), '--count', '1'], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(second.status, 1);
      assert.equal(second.stderr.trim(), 'flannelctl capture: cannot start a capture: a capture is already running on flannel0');
      const r = await echoes(a.pod, b.podIP, { count: 3, intervalMs: 50 });
      assert.ok(r.received >= 1, summary(r));
      run.kill(); // SIGKILL: no goodbye, the daemon only sees the connection close
      await run.exited;
    } finally {
      run.kill();
    }
    let active: boolean | undefined = true;
    for (const deadline = Date.now() + 10_000; active && Date.now() < deadline; ) {
      await sleep(100);
      active = await captureActive(a);
    }
    assert.equal(active, false, 'the daemon stopped the engine capture after the client disconnected');
    assert.match(lab.daemonLog(a), /Capture ended \(closed\)/);
    const again = spawnSync(process.execPath, [flannelctl, 'capture', '--socket', sock(a), '-w', join(dir, 'again.pcapng'), '--duration', '0.3'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /packets captured, 0 lost to a full capture buffer \(duration\)/);
  });
});
