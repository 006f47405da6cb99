// The inner packets of the golden wire fixtures (test/fixtures/golden/): what the engine is handed,
// built here from fixed bytes so the same input goes in on every run. engine-golden.test.ts runs
// each case through the real engine and compares what comes out with the fixture.
import { GSO, VNET_F_NEEDS_CSUM, type VnetHeader } from '../../src/native/offload.js';
import { arpRequest, icmpEcho, icmpv6Checksum, ipv4, ipv6, tcp, udp, v6Bytes, vxlanFrame, withL4Checksum } from './packets.js';

export type Encap = 'flannel-udp' | 'vxlan';
/** plain: no virtio header, no UDP offloads. offload: vnetHdr+tso+uso on the TUN, UDP_SEGMENT and UDP_GRO. */
export type Profile = 'plain' | 'offload';

/** Our node owns 198.19.1.0/24 + 2001:db8:100:1::/64; the peer (127.0.0.2) 198.19.2.0/24 + 2001:db8:100:2::/64. */
export const OUR_MAC = '0e:00:00:00:00:01';
export const PEER_MAC = '0e:00:00:00:00:02';
export const VNI = 1;
export const VTEP4 = '198.19.1.0';
export const INNER_MTU = 1450;

/** A packet read from the TUN: its bytes and the virtio header the kernel would have put in front. */
export interface TunInput {
  packet: Buffer;
  vnet?: Partial<VnetHeader>;
}

/** A datagram from a peer: the payload, from which address, and optionally as one UDP_SEGMENT send. */
export interface WireInput {
  payload: Buffer;
  from: string;
  segmentSize?: number;
}

export interface TxCase {
  name: string;
  profiles: Profile[];
  inputs: TunInput[];
}

export interface RxCase {
  name: string;
  profiles: Profile[];
  encaps?: Encap[];
  /** Built per encapsulation: the VXLAN cases wrap inner packets in frames. */
  inputs: (encap: Encap) => WireInput[];
}

const BOTH: Profile[] = ['plain', 'offload'];

/** Deterministic payload bytes. */
export function pattern(n: number, seed = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 13 + 3) & 0xff;
  return b;
}

/** A timestamps option; GRO merges only segments whose options are equal, as within a real burst. */
const tsOption = (val: number): Buffer => {
  const o = Buffer.from([1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
  o.writeUInt32BE(val, 4);
  o.writeUInt32BE(0x01020304, 8);
  return o;
};

function tcp4(src: string, dst: string, seq: number, data: Buffer, flags = 0x10, id = 0x2000): Buffer {
  return withL4Checksum(ipv4({ src, dst, proto: 6, id, payload: tcp({ srcPort: 40000, dstPort: 5201, seq, ack: 777, flags, options: tsOption(0x5000), data }) }));
}

function tcp6(src: string, dst: string, seq: number, data: Buffer, flags = 0x10): Buffer {
  return withL4Checksum(ipv6({ src, dst, next: 6, payload: tcp({ srcPort: 40001, dstPort: 5201, seq, ack: 999, flags, options: tsOption(0x6000), data }) }));
}

function echo6(src: string, dst: string, type: number, seq: number): Buffer {
  const m = icmpEcho(type, 0x66, seq, pattern(56, seq));
  m.writeUInt16BE(0, 2);
  m.writeUInt16BE(icmpv6Checksum(v6Bytes(src), v6Bytes(dst), m), 2);
  return ipv6({ src, dst, next: 58, payload: m });
}

/**
 * A TSO super-packet as the TUN hands it over: one IP packet of up to 64 KiB, the TCP checksum field
 * holding the pseudo-header sum (CHECKSUM_PARTIAL), and the virtio header describing the segments.
 */
function superTcp(v4: boolean, payload: number, mss: number): TunInput {
  const data = pattern(payload, 5);
  const p = v4 ? tcp4('198.19.1.2', '198.19.2.3', 1_000_000, data, 0x18) : tcp6('2001:db8:100:1::2', '2001:db8:100:2::3', 1_000_000, data, 0x18);
  const l3 = v4 ? 20 : 40;
  const hdrLen = l3 + 32;
  return { packet: pseudoOnly(p, l3, 16, 6), vnet: { flags: VNET_F_NEEDS_CSUM, gsoType: v4 ? GSO.tcpv4 : GSO.tcpv6, hdrLen, gsoSize: mss, csumStart: l3, csumOffset: 16 } };
}

/** The packet with its L4 checksum field replaced by the folded pseudo-header sum (not complemented). */
function pseudoOnly(p: Buffer, l3: number, csumAt: number, proto: number): Buffer {
  const out = Buffer.from(p);
  const v4 = l3 === 20;
  const l4len = out.length - l3;
  let sum = 0;
  const addr = v4 ? out.subarray(12, 20) : out.subarray(8, 40);
  for (let i = 0; i < addr.length; i += 2) sum += addr.readUInt16BE(i);
  sum += proto + (l4len >>> 16) + (l4len & 0xffff);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  out.writeUInt16BE(sum, l3 + csumAt);
  return out;
}

export const TX_CASES: TxCase[] = [
  { name: 'icmp echo v4', profiles: BOTH, inputs: [{ packet: ipv4({ src: '198.19.1.2', dst: '198.19.2.3', proto: 1, payload: icmpEcho(8, 0x55, 1, pattern(56)) }) }] },
  { name: 'icmp echo v6', profiles: BOTH, inputs: [{ packet: echo6('2001:db8:100:1::2', '2001:db8:100:2::3', 128, 1) }] },
  { name: 'tcp segment v4', profiles: BOTH, inputs: [{ packet: tcp4('198.19.1.2', '198.19.2.3', 5000, pattern(200, 1), 0x18) }] },
  {
    name: 'udp v6',
    profiles: BOTH,
    inputs: [{ packet: withL4Checksum(ipv6({ src: '2001:db8:100:1::2', dst: '2001:db8:100:2::3', next: 17, payload: udp(5353, 6000, pattern(300, 2)) })) }],
  },
  {
    name: 'no route: ICMP back into the TUN',
    profiles: BOTH,
    inputs: [
      { packet: ipv4({ src: '198.19.1.2', dst: '198.19.9.9', proto: 1, payload: icmpEcho(8, 0x55, 2, pattern(56)) }) },
      { packet: echo6('2001:db8:100:1::2', '2001:db8:100:9::9', 128, 2) },
    ],
  },
  { name: 'ttl 1', profiles: ['plain'], inputs: [{ packet: ipv4({ src: '198.19.1.2', dst: '198.19.2.3', proto: 1, ttl: 1, payload: icmpEcho(8, 0x55, 3, pattern(56)) }) }] },
  { name: 'tso v4 64 KiB super-packet', profiles: ['offload'], inputs: [superTcp(true, 65_535 - 52, 1_388)] },
  { name: 'tso v6 super-packet', profiles: ['offload'], inputs: [superTcp(false, 30_000, 1_368)] },
  {
    name: 'uso v4 super-packet',
    profiles: ['offload'],
    inputs: [
      {
        packet: pseudoOnly(ipv4({ src: '198.19.1.2', dst: '198.19.2.3', proto: 17, payload: udp(5000, 6000, pattern(9_000, 3)) }), 20, 6, 17),
        vnet: { flags: VNET_F_NEEDS_CSUM, gsoType: GSO.udpL4, hdrLen: 28, gsoSize: 1_200, csumStart: 20, csumOffset: 6 },
      },
    ],
  },
  {
    name: 'checksum partial, no gso',
    profiles: ['offload'],
    inputs: [
      {
        packet: pseudoOnly(ipv4({ src: '198.19.1.2', dst: '198.19.2.3', proto: 17, payload: udp(5000, 6000, pattern(333, 4)) }), 20, 6, 17),
        vnet: { flags: VNET_F_NEEDS_CSUM, csumStart: 20, csumOffset: 6 },
      },
    ],
  },
];

/** Inner packets on the wire: as is for flannel-udp, in a frame from the peer's VTEP to ours for VXLAN. */
function wrap(encap: Encap, inner: Buffer): Buffer {
  if (encap === 'flannel-udp') return inner;
  return vxlanFrame(VNI, OUR_MAC, PEER_MAC, inner[0]! >> 4 === 6 ? 0x86dd : 0x0800, inner);
}

const fromPeer = (encap: Encap, inner: Buffer[]): WireInput[] => inner.map((p) => ({ payload: wrap(encap, p), from: '127.0.0.2' }));

/** n in-order full-size segments of one TCP flow (the last with PSH), as a sender's GSO splits them. */
function tcpRun(v4: boolean, n: number, mss: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const seq = 2_000_000 + i * mss;
    const flags = i === n - 1 ? 0x18 : 0x10;
    out.push(v4 ? tcp4('198.19.2.3', '198.19.1.2', seq, pattern(mss, i), flags, 0x3000 + i) : tcp6('2001:db8:100:2::3', '2001:db8:100:1::2', seq, pattern(mss, i), flags));
  }
  return out;
}

export const RX_CASES: RxCase[] = [
  {
    name: 'icmp echo reply v4 and v6',
    profiles: BOTH,
    inputs: (e) =>
      fromPeer(e, [
        ipv4({ src: '198.19.2.3', dst: '198.19.1.2', proto: 1, payload: icmpEcho(0, 0x55, 1, pattern(56)) }),
        echo6('2001:db8:100:2::3', '2001:db8:100:1::2', 129, 1),
      ]),
  },
  { name: 'tcp run v4 (GRO coalesces)', profiles: BOTH, inputs: (e) => fromPeer(e, tcpRun(true, 12, 1_388)) },
  { name: 'tcp run v6 (GRO coalesces)', profiles: BOTH, inputs: (e) => fromPeer(e, tcpRun(false, 6, 1_368)) },
  {
    name: 'udp gso batch (UDP_GRO receive)',
    profiles: BOTH,
    inputs: (e) => {
      const segs = tcpRun(true, 8, 1_388).map((p) => wrap(e, p));
      return [{ payload: Buffer.concat(segs), from: '127.0.0.2', segmentSize: segs[0]!.length }];
    },
  },
  {
    name: 'spoofed: unknown outer source, inner source outside the peer subnet',
    profiles: ['plain'],
    inputs: (e) => [
      { payload: wrap(e, ipv4({ src: '198.19.2.3', dst: '198.19.1.2', proto: 1, payload: icmpEcho(0, 0x55, 2, pattern(56)) })), from: '127.0.0.3' },
      ...fromPeer(e, [ipv4({ src: '198.19.7.7', dst: '198.19.1.2', proto: 1, payload: icmpEcho(0, 0x55, 3, pattern(56)) })]),
    ],
  },
  {
    name: 'ttl 1 from the peer',
    profiles: ['plain'],
    encaps: ['flannel-udp'],
    inputs: (e) => fromPeer(e, [ipv4({ src: '198.19.2.3', dst: '198.19.1.2', proto: 1, ttl: 1, payload: icmpEcho(0, 0x55, 4, pattern(56)) })]),
  },
  {
    name: 'vxlan: ARP request for our VTEP is answered, others are not',
    profiles: ['plain'],
    encaps: ['vxlan'],
    inputs: () => [
      { payload: vxlanFrame(VNI, 'ff:ff:ff:ff:ff:ff', PEER_MAC, 0x0806, arpRequest(PEER_MAC, '198.19.2.0', VTEP4)), from: '127.0.0.2' },
      { payload: vxlanFrame(VNI, OUR_MAC, PEER_MAC, 0x0806, arpRequest(PEER_MAC, '198.19.2.0', '198.19.1.77')), from: '127.0.0.2' },
    ],
  },
  {
    name: 'vxlan: wrong VNI, wrong MACs, bad EtherType, truncated',
    profiles: ['plain'],
    encaps: ['vxlan'],
    inputs: () => {
      const inner = ipv4({ src: '198.19.2.3', dst: '198.19.1.2', proto: 1, payload: icmpEcho(0, 0x55, 5, pattern(56)) });
      return [
        vxlanFrame(VNI + 1, OUR_MAC, PEER_MAC, 0x0800, inner),
        vxlanFrame(VNI, '0e:00:00:00:00:99', PEER_MAC, 0x0800, inner),
        vxlanFrame(VNI, OUR_MAC, '0e:00:00:00:00:98', 0x0800, inner),
        vxlanFrame(VNI, OUR_MAC, PEER_MAC, 0x88cc, inner),
        vxlanFrame(VNI, OUR_MAC, PEER_MAC, 0x0800, inner).subarray(0, 20),
      ].map((payload) => ({ payload, from: '127.0.0.2' }));
    },
  },
  {
    name: 'vxlan: an inner TCP packet above the TUN MTU is re-segmented',
    profiles: BOTH,
    encaps: ['vxlan'],
    inputs: (e) => fromPeer(e, [tcp4('198.19.2.3', '198.19.1.2', 3_000_000, pattern(6_000, 9), 0x18)]),
  },
];
