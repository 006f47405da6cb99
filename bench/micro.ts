// Micro benchmarks of the data plane's hot pure functions (benchmark.js), through their Node-API
// exports. Each call does a batch of work natively (1,000 lookups, one 64 KiB split, one 44-segment
// coalesce) so the per-call JS overhead stays small next to what is measured.
//   npm run bench:micro            (writes bench/results/micro-latest.{md,json})
import Benchmark from 'benchmark';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { decrementTTL, RouteTable } from '../src/native/packet.js';
import { encodeVnetHeader, GSO, groCoalesceCount, gsoSplitInto, VNET_F_NEEDS_CSUM } from '../src/native/offload.js';
import { ipv4, tcp, withL4Checksum } from '../test/helpers/packets.js';

interface Row {
  name: string;
  /** Work items per benchmark call (lookups, packets...). */
  per: number;
  unit: string;
  hz: number;
  rme: number;
}

const LOOKUPS = 1000;

/** n peers with /30 subnets inside 198.19.0.0/16 (up to 16,384), public IPs in 198.18.0.0/16. */
function table(n: number): { t: RouteTable; dsts: Buffer } {
  const routes = Array.from({ length: n }, (_, i) => ({
    subnet: `198.19.${(i * 4) >> 8}.${(i * 4) & 255}/30`,
    publicIP: `198.18.${1 + (i >> 8)}.${i & 255}`,
    port: 8285,
  }));
  const t = new RouteTable(routes);
  const dsts = Buffer.alloc(LOOKUPS * 4);
  for (let k = 0; k < LOOKUPS; k++) {
    const i = (k * 7919) % n; // spread over the table
    dsts.set([198, 19, (i * 4) >> 8, ((i * 4) & 255) + 1], k * 4);
  }
  if (t.lookupMany(dsts) !== LOOKUPS) throw new Error('benchmark table misses');
  return { t, dsts };
}

function tcpV4(seq: number, payload: number): Buffer {
  const data = Buffer.alloc(payload, 0x5a);
  return withL4Checksum(ipv4({ src: '198.19.1.2', dst: '198.19.2.2', proto: 6, payload: tcp({ srcPort: 40000, dstPort: 5201, seq, ack: 1, data }) }));
}

const MSS = 1420;
const SEGS = 44; // a 62 KiB TSO write at MTU 1472
const superPacket = (() => {
  const p = tcpV4(1, MSS * SEGS);
  return Buffer.concat([encodeVnetHeader({ flags: VNET_F_NEEDS_CSUM, gsoType: GSO.tcpv4, hdrLen: 40, gsoSize: MSS, csumStart: 20, csumOffset: 16 }), p]);
})();
const splitOut = Buffer.alloc(128 * 1024);
const wireTrain = Buffer.concat(Array.from({ length: SEGS }, (_, i) => tcpV4(1 + i * MSS, MSS)));
const oneSegment = tcpV4(1, 1400);

const small = table(10);
const large = table(10_000);

const rows: Row[] = [];
const suite = new Benchmark.Suite('flannelts data plane');
const add = (name: string, per: number, unit: string, fn: () => void): void => {
  suite.add(name, fn, { minSamples: 20, maxTime: 2 });
  rows.push({ name, per, unit, hz: 0, rme: 0 });
};

add('route lookup, 10 peers', LOOKUPS, 'lookup', () => small.t.lookupMany(small.dsts));
add('route lookup, 10,000 peers', LOOKUPS, 'lookup', () => large.t.lookupMany(large.dsts));
add(`GSO split, 64 KiB TCPv4 -> ${SEGS} segments`, 1, 'super-packet', () => gsoSplitInto(superPacket, splitOut));
add(`GRO coalesce, ${SEGS} TCPv4 segments -> 1`, 1, 'super-packet', () => groCoalesceCount(wireTrain, MSS + 40));
add('encap: classify + TTL decrement, 1,400 B', 1, 'packet', () => {
  oneSegment[8] = 64; // keep the TTL from running out; the checksum update is the same work
  decrementTTL(oneSegment);
});

suite.on('cycle', (e: Benchmark.Event) => {
  const b = e.target as unknown as Benchmark & { name: string };
  const row = rows.find((r) => r.name === b.name);
  if (row) {
    row.hz = b.hz ?? 0;
    row.rme = b.stats?.rme ?? 0;
  }
  process.stdout.write(`${String(b)}\n`);
});

suite.on('complete', () => {
  const lines = [
    `micro benchmarks (benchmark.js), ${new Date().toISOString()}, ${cpus()[0]?.model.trim()}, ${cpus().length} cores, Linux ${release()}, node ${process.version}, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    '',
    '| function | time per item | items/s | ±% |',
    '| --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const perItemNs = 1e9 / (r.hz * r.per);
    const t = perItemNs >= 1000 ? `${(perItemNs / 1000).toFixed(2)} µs` : `${perItemNs.toFixed(1)} ns`;
    let extra = '';
    if (r.unit === 'super-packet') extra = ` (${((MSS * SEGS * r.hz) / 1e9).toFixed(1)} GB/s of payload)`;
    lines.push(`| ${r.name} | ${t} per ${r.unit}${extra} | ${(r.hz * r.per).toExponential(2)} | ${r.rme.toFixed(1)} |`);
  }
  const md = lines.join('\n') + '\n';
  process.stdout.write('\n' + md);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/micro-latest.md', md);
  writeFileSync('bench/results/micro-latest.json', JSON.stringify({ date: new Date().toISOString(), rows }, null, 2) + '\n');
});

suite.run();
