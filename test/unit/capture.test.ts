// flannelctl capture without a daemon: the pcap/pcapng bytes, the engine record decoder, request
// validation (CLI and query string), and the daemon-side session against an in-memory engine.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pcapEncoder, pcapHeader, pcapngHeader, pcapngPacket, pcapPacket, recordComment } from '../../src/capture/pcap.js';
import { decodeRecords, RECORD_HEADER_BYTES, type CaptureRecord } from '../../src/capture/records.js';
import { CaptureOptionError, fromQuery, parsePeer, toEngineFilter, toQuery, type CaptureRequest } from '../../src/capture/options.js';
import { CaptureSession, type CaptureSource } from '../../src/capture/session.js';
import { DROP_REASONS, nativeDropReasons, type CaptureChunk, type CaptureFilter } from '../../src/native/engine.js';
import { icmpEcho, ipv4 } from '../helpers/packets.js';
import { readPcap } from '../helpers/pcap-read.js';
import { binary, need } from '../helpers/prereq.js';
import { startStatusServer } from '../../src/status.js';
import type { Daemon } from '../../src/daemon.js';

const flannelctl = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'flannelctl.js');
const ping = ipv4({ src: '198.19.1.2', dst: '198.19.2.2', proto: 1, payload: icmpEcho(8, 7, 1, Buffer.from('flannelts')) });
const T = 1_764_000_000_123_456_789n;
const rec = (o: Partial<CaptureRecord> = {}): CaptureRecord => ({ timeNs: T, dir: 'tx', peerIP: '198.18.0.12', peerSubnet: '198.19.2.0/24', originalLength: ping.length, data: ping, ...o });

/** One engine record as native/engine/capture_ring.h lays it out. */
function nativeRecord(o: { dir: number; reason: number; data: Buffer; orig?: number; peer?: number[]; subnet?: [number[], number] }): Buffer {
  const size = (RECORD_HEADER_BYTES + o.data.length + 7) & ~7;
  const b = Buffer.alloc(size);
  b.writeUInt32LE(size, 0);
  b.writeUInt32LE(o.data.length, 4);
  b.writeUInt32LE(o.orig ?? o.data.length, 8);
  b[12] = o.dir;
  b[13] = o.reason;
  if (o.peer) {
    b[14] = o.peer.length === 4 ? 4 : 6;
    Buffer.from(o.peer).copy(b, 32);
  }
  if (o.subnet) {
    b[15] = o.subnet[0].length === 4 ? 4 : 6;
    b[16] = o.subnet[1];
    Buffer.from(o.subnet[0]).copy(b, 48);
  }
  b.writeBigUInt64LE(T, 24);
  o.data.copy(b, RECORD_HEADER_BYTES);
  return b;
}

describe('pcap writers', () => {
  test('classic pcap: global header and record header bytes', () => {
    assert.equal(pcapHeader(65535).toString('hex'), 'd4c3b2a1' + '0200' + '0400' + '00000000' + '00000000' + 'ffff0000' + '65000000');
    const p = pcapPacket(rec());
    // 1764000000 s, 123456 µs, caplen, origlen (little-endian), then the packet.
    assert.equal(p.subarray(0, 16).toString('hex'), '00812469' + '40e20100' + '25000000' + '25000000');
    assert.deepEqual(p.subarray(16), ping);
  });

  test('pcapng: section header, interface (raw IP, if_name, ns resolution), packet block with comment and flags', () => {
    const h = pcapngHeader({ snaplen: 200, device: 'flannel0', application: 'flannelts 0.1.0' });
    // SHB: type, length 52, byte-order magic, v1.0, section length -1, shb_userappl "flannelts 0.1.0" (15 -> 16), end, length.
    assert.equal(h.readUInt32LE(0), 0x0a0d0d0a);
    assert.equal(h.readUInt32LE(4), 52);
    assert.equal(h.subarray(8, 24).toString('hex'), '4d3c2b1a' + '0100' + '0000' + 'ffffffffffffffff');
    assert.equal(h.subarray(24, 28).toString('hex'), '04000f00');
    assert.equal(h.subarray(28, 44).toString(), 'flannelts 0.1.0\0');
    assert.equal(h.subarray(44, 48).toString('hex'), '00000000');
    assert.equal(h.readUInt32LE(52 - 4), 52);
    // IDB: type 1, LINKTYPE_RAW, snaplen, if_name "flannel0", if_tsresol 9.
    const idb = h.subarray(52);
    assert.equal(idb.readUInt32LE(0), 1);
    assert.equal(idb.readUInt32LE(4), idb.length);
    assert.equal(idb.subarray(8, 16).toString('hex'), '6500' + '0000' + 'c8000000');
    assert.equal(idb.subarray(16, 28).toString('hex'), '02000800' + Buffer.from('flannel0').toString('hex'));
    assert.equal(idb.subarray(28, 36).toString('hex'), '09000100' + '09000000');
    assert.equal(idb.subarray(36, 40).toString('hex'), '00000000');

    const e = pcapngPacket(rec({ dir: 'rx', reason: 'spoofed_source', peerSubnet: undefined }));
    assert.equal(e.readUInt32LE(0), 6);
    assert.equal(e.readUInt32LE(4), e.length);
    assert.equal(e.length % 4, 0);
    assert.equal(e.readUInt32LE(8), 0); // interface 0
    assert.equal((BigInt(e.readUInt32LE(12)) << 32n) | BigInt(e.readUInt32LE(16)), T);
    assert.equal(e.readUInt32LE(20), ping.length);
    assert.deepEqual(e.subarray(28, 28 + ping.length), ping);
    const back = readPcap(Buffer.concat([h, e]));
    assert.equal(back.packets[0]!.comment, 'drop reason=spoofed_source dir=rx peer=198.18.0.12');
    assert.equal(back.packets[0]!.flags, 1); // inbound
  });

  test('comments name direction, peer subnet and public IP, and the drop reason', () => {
    assert.equal(recordComment(rec()), 'dir=tx peer=198.19.2.0/24 via 198.18.0.12');
    assert.equal(recordComment(rec({ reason: 'no_route', peerIP: undefined, peerSubnet: undefined })), 'drop reason=no_route dir=tx');
  });

  test('a written file reads back: header, count, contents; tcpdump reads pcapng and pcap', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'flannelts-pcap-'));
    try {
      for (const format of ['pcapng', 'pcap'] as const) {
        const enc = pcapEncoder(format, { snaplen: 65535, device: 'flannel0', application: 'test' });
        const file = join(dir, `x.${format}`);
        writeFileSync(file, Buffer.concat([enc.header, enc.packet(rec()), enc.packet(rec({ dir: 'rx', reason: 'unknown_peer', data: ping.subarray(0, 30) }))]));
        const back = readPcap(Buffer.concat([enc.header, enc.packet(rec()), enc.packet(rec({ data: ping.subarray(0, 30) }))]));
        assert.equal(back.format, format);
        assert.equal(back.linkType, 101);
        assert.equal(back.packets.length, 2);
        assert.deepEqual(back.packets[0]!.data, ping);
        assert.equal(back.packets[1]!.capturedLength, 30);
        assert.equal(back.packets[1]!.originalLength, ping.length);
        if (!need(t, binary('tcpdump'))) continue;
        const r = spawnSync('tcpdump', ['-r', file, '-nn', '-tt'], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /link-type RAW/);
        assert.match(r.stdout, /^1764000000\.123456 IP 198\.19\.1\.2 > 198\.19\.2\.2: ICMP echo request, id 7, seq 1, length 17$/m);
        assert.equal(r.stdout.trim().split('\n').length, 2);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('engine capture records', () => {
  test('decode: direction, drop reason by the engine index, peer address and subnet, truncation', () => {
    const buf = Buffer.concat([
      nativeRecord({ dir: 0, reason: 0xff, data: ping, peer: [198, 18, 0, 12], subnet: [[198, 19, 2, 0], 24] }),
      nativeRecord({ dir: 1, reason: 3, data: ping.subarray(0, 20), orig: ping.length, peer: [198, 18, 0, 1] }),
      nativeRecord({ dir: 1, reason: 2, data: Buffer.alloc(0) }),
    ]);
    const [a, b, c] = decodeRecords(buf, DROP_REASONS);
    assert.deepEqual(a, { timeNs: T, dir: 'tx', originalLength: ping.length, data: ping, peerIP: '198.18.0.12', peerSubnet: '198.19.2.0/24' });
    assert.deepEqual(b, { timeNs: T, dir: 'rx', reason: 'spoofed_source', originalLength: ping.length, data: ping.subarray(0, 20), peerIP: '198.18.0.1' });
    assert.equal(c!.reason, 'malformed');
    assert.equal(c!.data.length, 0);
    assert.throws(() => decodeRecords(buf.subarray(0, 70), DROP_REASONS), /bad size/);
  });

  test('the addon names its drop reasons in the order TypeScript knows them', () => {
    assert.deepEqual(nativeDropReasons(), [...DROP_REASONS]);
  });
});

describe('capture requests', () => {
  const base: CaptureRequest = { peers: [], drops: false, reasons: [], snaplen: 65535, format: 'pcapng' };

  test('peers: subnets and addresses, host bits refused', () => {
    assert.equal(parsePeer('198.19.2.0/24'), '198.19.2.0/24');
    assert.equal(parsePeer('198.18.0.12'), '198.18.0.12/32');
    assert.equal(parsePeer('2001:db8:100:2::/64'), '2001:db8:100:2::/64');
    assert.equal(parsePeer('2001:db8::1'), '2001:db8::1/128');
    assert.throws(() => parsePeer('198.19.2.1/24'), /host bits set; did you mean 198\.19\.2\.0\/24\?/);
    assert.throws(() => parsePeer('n2'), CaptureOptionError);
  });

  test('query string round trip, and every bad parameter named', () => {
    const r: CaptureRequest = { peers: ['198.19.2.0/24', '198.18.0.12/32'], drops: true, reasons: ['spoofed_source', 'unknown_peer'], direction: 'rx', count: 10, durationSec: 2.5, snaplen: 128, format: 'pcap' };
    assert.deepEqual(fromQuery(new URLSearchParams(toQuery(r)), DROP_REASONS), r);
    assert.deepEqual(fromQuery(new URLSearchParams(''), DROP_REASONS), { ...base, direction: undefined, count: undefined, durationSec: undefined });
    for (const [q, re] of [
      ['count=0', /count "0" must be a whole number from 1/],
      ['count=1.5', /count/],
      ['duration=-1', /duration "-1"/],
      ['snaplen=300000', /snaplen "300000" must be a whole number from 1 to 262144/],
      ['reason=bogus', /unknown drop reason "bogus"/],
      ['direction=up', /direction "up" must be tx or rx/],
      ['format=erf', /format "erf"/],
      ['drops=yes', /drops "yes"/],
      ['peer=198.19.2.1/24', /host bits/],
      ['colour=red', /unknown capture parameter "colour"/],
    ] as const) {
      assert.throws(() => fromQuery(new URLSearchParams(q), DROP_REASONS), re, q);
    }
  });

  test('engine filter: --reason implies drops only; direction picks a side; count bounds the engine', () => {
    assert.deepEqual(toEngineFilter(base), { tx: true, rx: true, traffic: true, peers: [], snaplen: 65535, maxPackets: 0 });
    assert.deepEqual(toEngineFilter({ ...base, reasons: ['no_route'], direction: 'tx', count: 5 }), {
      tx: true, rx: false, traffic: false, reasons: ['no_route'], peers: [], snaplen: 65535, maxPackets: 5,
    });
    assert.equal(toEngineFilter({ ...base, drops: true }).traffic, false);
  });

  test('flannelctl capture: a bad value is one clear line and exit code 1, before touching the socket', () => {
    for (const [args, re] of [
      [['--count', 'ten'], /^error: option '-c, --count <n>' argument 'ten' is invalid\. count "ten" must be a whole number/],
      [['--reason', 'lost'], /argument 'lost' is invalid\. unknown drop reason "lost" \(one of no_route, /],
      [['--peer', '198.19.0.0/16x'], /argument '198\.19\.0\.0\/16x' is invalid\. "198\.19\.0\.0\/16x" is not a subnet/],
      [['--duration', '0'], /duration "0" must be a number of seconds above 0/],
      [['--format', 'snoop'], /format "snoop" must be one of pcapng, pcap/],
    ] as const) {
      const r = spawnSync(process.execPath, [flannelctl, 'capture', '--socket', '/nonexistent/flannelts.sock', '-w', '/dev/null', ...args], { encoding: 'utf8' });
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });

  test('flannelctl capture: no daemon is one line naming the socket', () => {
    const r = spawnSync(process.execPath, [flannelctl, 'capture', '--socket', '/nonexistent/flannelts.sock', '-w', '/dev/null'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim(), 'flannelctl capture: cannot capture via /nonexistent/flannelts.sock: ENOENT (is flanneld running? give its -status-socket with --socket)');
  });
});

/** An in-memory engine: records queued by the test come out of read(); stop() says whether it was called. */
class FakeEngine implements CaptureSource {
  readonly device = 'flannel0';
  readonly reasons = DROP_REASONS;
  filter?: CaptureFilter;
  queued: Buffer[] = [];
  running = false;
  lost = 0;
  start(f: CaptureFilter): void {
    if (this.running) throw new Error('a capture is already running on flannel0');
    this.filter = f;
    this.running = true;
  }
  private take(active: boolean): CaptureChunk {
    const records = Buffer.concat(this.queued);
    this.queued = [];
    return { active, recorded: 0, lost: this.lost, records };
  }
  read(): CaptureChunk {
    return this.take(this.running);
  }
  stop(): CaptureChunk {
    this.running = false;
    return this.take(false);
  }
}

describe('capture session (daemon side)', () => {
  const req: CaptureRequest = { peers: [], drops: false, reasons: [], snaplen: 65535, format: 'pcapng' };
  const output = () => {
    const parts: Buffer[] = [];
    return { parts, out: { write: (b: Buffer) => void parts.push(b), backlog: () => 0 } };
  };

  test('stops the engine at the count and writes exactly that many packets', async () => {
    const eng = new FakeEngine();
    const { parts, out } = output();
    const s = new CaptureSession(eng, { ...req, count: 3 }, out, 5);
    s.start();
    assert.equal(eng.filter?.maxPackets, 3);
    for (let i = 0; i < 5; i++) eng.queued.push(nativeRecord({ dir: 0, reason: 0xff, data: ping }));
    eng.lost = 2;
    const end = await s.done;
    assert.deepEqual(end, { packets: 3, lost: 2, end: 'count' });
    assert.equal(eng.running, false);
    assert.equal(readPcap(Buffer.concat(parts)).packets.length, 3);
  });

  test('a client that goes away stops the engine and gets nothing more', async () => {
    const eng = new FakeEngine();
    const { parts, out } = output();
    const s = new CaptureSession(eng, req, out, 5);
    s.start();
    eng.queued.push(nativeRecord({ dir: 1, reason: 4, data: ping }));
    assert.deepEqual(s.finish('closed'), { packets: 0, lost: 0, end: 'closed' });
    assert.equal(eng.running, false);
    assert.equal(parts.length, 1); // the file header only
  });

  test('duration ends it; a second capture while one runs is refused by the engine', async () => {
    const eng = new FakeEngine();
    const s = new CaptureSession(eng, { ...req, durationSec: 0.05 }, output().out, 5);
    s.start();
    assert.throws(() => new CaptureSession(eng, req, output().out).start(), /already running/);
    eng.queued.push(nativeRecord({ dir: 1, reason: 3, data: ping }));
    const end = await s.done;
    assert.equal(end.end, 'duration');
    assert.equal(end.packets, 1);
  });

  test('an engine that closes under the session ends it', async () => {
    const eng = new FakeEngine();
    const s = new CaptureSession(eng, req, output().out, 5);
    s.start();
    eng.read = () => {
      throw new Error('engine is closed');
    };
    assert.equal((await s.done).end, 'engine');
  });
});

describe('flannelctl capture against a status socket (in-memory engine, no root)', () => {
  /** Runs the real CLI without blocking this process's event loop (the status server lives here). */
  const cli = (args: string[]): Promise<{ code: number | null; stderr: string }> =>
    new Promise((resolve) => {
      const c = spawn(process.execPath, [flannelctl, 'capture', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      c.once('exit', (code) => resolve({ code, stderr }));
    });
  const withServer = async (network: unknown, fn: (sock: string, dir: string) => Promise<void>): Promise<void> => {
    const dir = mkdtempSync(join(tmpdir(), 'flannelts-capsock-'));
    const sock = join(dir, 'flannelts.sock');
    const daemon = { network, config: { backend: { type: 'vxlan' } } } as unknown as Daemon;
    const server = await startStatusServer(sock, daemon);
    try {
      await fn(sock, dir);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  };

  test('streams the file, stops at --count, reports packets and lost records from the trailers', async () => {
    const eng = new FakeEngine();
    eng.lost = 2;
    for (let i = 0; i < 5; i++) eng.queued.push(nativeRecord({ dir: i % 2, reason: i === 4 ? 1 : 0xff, data: ping, peer: [198, 18, 0, 12] }));
    await withServer({ capture: eng }, async (sock, dir) => {
      const file = join(dir, 'x.pcapng');
      const r = await cli(['--socket', sock, '-w', file, '--count', '3', '--peer', '198.19.2.0/24']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^flannelctl capture: capturing on flannel0: packets and drops, peer 198\.19\.2\.0\/24; pcapng, snaplen 65535; stops after 3 packets$/m);
      assert.match(r.stderr, /^flannelctl capture: 3 packets captured, 2 lost to a full capture buffer \(count\)$/m);
      assert.deepEqual(eng.filter?.peers, ['198.19.2.0/24']);
      assert.equal(eng.running, false);
      const cap = readPcap(readFileSync(file));
      assert.deepEqual(cap.packets.map((p) => p.comment), ['dir=tx peer=198.18.0.12', 'dir=rx peer=198.18.0.12', 'dir=tx peer=198.18.0.12']);
    });
  });

  test('errors are one line: unwritable -w file, a backend without our data plane', async () => {
    const eng = new FakeEngine();
    await withServer({ capture: eng }, async (sock) => {
      const r = await cli(['--socket', sock, '-w', '/nonexistent-dir/x.pcapng']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^flannelctl capture: cannot write the capture: ENOENT: no such file or directory, open '\/nonexistent-dir\/x\.pcapng'\n$/);
      assert.equal(eng.filter, undefined, 'the file is opened before the daemon is asked: no capture was started for it');
    });
    await withServer({}, async (sock) => {
      const r = await cli(['--socket', sock, '-w', '/dev/null']);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, "flannelctl capture: capture needs flannelts' own data plane (the udp backend, the userspace VXLAN VTEP or userspace WireGuard); this daemon runs vxlan\n");
    });
  });
});
