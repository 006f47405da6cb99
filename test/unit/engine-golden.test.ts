// Golden wire fixtures: what the real engine puts on the wire and into its TUN for a fixed set of
// inner packets (test/helpers/golden-cases.ts), for flannel-udp and VXLAN, with offloads and without,
// compared byte for byte (small packets in full, large ones by length, head and sha256) with
// test/fixtures/golden/wire-<encap>.json. The fixtures were captured before the native code was
// restructured; a change in any byte is a change in behaviour. GOLDEN_UPDATE=1 rewrites them.
// Runs without root: the TUN is a FakeTun, the underlay loopback (engine 127.0.0.1, peer 127.0.0.2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineStats, PeerRoute } from '../../src/native/engine.js';
import { ALL_TUN_OFFLOADS, EngineRig, NO_TUN_OFFLOADS, UdpPeer, until, type Datagram } from '../helpers/engine-rig.js';
import { udpSend } from '../helpers/fake-tun.js';
import { INNER_MTU, OUR_MAC, PEER_MAC, RX_CASES, TX_CASES, VNI, VTEP4, type Encap, type Profile, type WireInput } from '../helpers/golden-cases.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'fixtures', 'golden');
const UPDATE = process.env.GOLDEN_UPDATE === '1';

/** One packet: in full up to 256 bytes; larger ones by length, their first 128 bytes and a digest. */
interface Digest {
  len: number;
  hex?: string;
  head?: string;
  sha256?: string;
}

interface Outcome {
  inputs: Digest[];
  /** UDP payloads that reached the peer, in arrival order. */
  wire: Digest[];
  /** What the engine wrote into its TUN (virtio header included when negotiated), in order. */
  tun: Digest[];
  /** Totals, non-zero drops and offload counters after the case. */
  counters: Record<string, number>;
}

type Fixture = Record<string, Outcome>;

/** Queues a case's input (TUN writes, datagrams) before the engine starts; returns the input's digests. */
type Queue = (rig: EngineRig, peer: UdpPeer) => Promise<Digest[]>;

function digest(b: Buffer): Digest {
  if (b.length <= 256) return { len: b.length, hex: b.toString('hex') };
  return { len: b.length, head: b.subarray(0, 128).toString('hex'), sha256: createHash('sha256').update(b).digest('hex') };
}

function counters(s: EngineStats): Record<string, number> {
  const out: Record<string, number> = { txPackets: s.tx.packets, txBytes: s.tx.bytes, rxPackets: s.rx.packets, rxBytes: s.rx.bytes, arpReplies: s.arpReplies };
  for (const [k, v] of Object.entries(s.drops)) if (v) out[`drop.${k}`] = v;
  for (const [k, v] of Object.entries(s.offload)) if (v) out[`offload.${k}`] = v;
  return out;
}

function open(encap: Encap, profile: Profile): EngineRig {
  const offload = profile === 'offload';
  return EngineRig.open({
    tunOffloads: offload ? ALL_TUN_OFFLOADS : NO_TUN_OFFLOADS,
    offload: { udpGso: offload, udpGro: offload },
    ...(encap === 'vxlan' ? { encap, vni: VNI, mac: OUR_MAC, vtep4: VTEP4, innerMtu: INNER_MTU, sendSockets: 2 } : {}),
  });
}

function peerRoutes(encap: Encap, port: number): PeerRoute[] {
  const mac = encap === 'vxlan' ? { mac: PEER_MAC } : {};
  return [
    { subnet: '198.19.2.0/24', publicIP: '127.0.0.2', port, ...mac },
    { subnet: '2001:db8:100:2::/64', publicIP: '127.0.0.2', port, ...mac },
  ];
}

/**
 * Runs one case: input is queued (TUN writes, datagrams) before the engine starts, so its first
 * batch holds all of it and batching, GSO and GRO come out the same on every run.
 */
async function run(encap: Encap, profile: Profile, queue: Queue, expected?: Outcome): Promise<Outcome> {
  const rig = open(encap, profile);
  const peer = await UdpPeer.bind('127.0.0.2', rig.port);
  try {
    rig.engine.setPeers(peerRoutes(encap, rig.port));
    const inputs = await queue(rig, peer);
    rig.engine.start();
    let wire: Datagram[];
    let tun: Buffer[];
    if (expected) {
      wire = await peer.take(expected.wire.length);
      tun = await rig.tun.take(expected.tun.length);
      // Nothing more than expected, and the counters settled.
      await until(() => JSON.stringify(counters(rig.stats())) === JSON.stringify(expected.counters), 2000);
      wire.push(...(await peer.drain(100)));
      tun.push(...(await rig.tun.drain(50)));
    } else {
      wire = await peer.drain(300);
      tun = await rig.tun.drain(100);
    }
    return { inputs, wire: wire.map((d) => digest(d.data)), tun: tun.map(digest), counters: counters(rig.stats()) };
  } finally {
    rig.close();
    peer.close();
  }
}

async function sendWire(peer: UdpPeer, port: number, inputs: WireInput[]): Promise<void> {
  for (const w of inputs) {
    if (w.from === '127.0.0.2' && !w.segmentSize) await peer.send(w.payload, '127.0.0.1', port);
    else udpSend({ from: w.from, to: '127.0.0.1', port, payload: w.payload, ...(w.segmentSize ? { segmentSize: w.segmentSize } : {}) });
  }
}

function fixturePath(encap: Encap): string {
  return join(FIXTURES, `wire-${encap}.json`);
}

for (const encap of ['flannel-udp', 'vxlan'] as const) {
  const stored: Fixture = UPDATE ? {} : (JSON.parse(readFileSync(fixturePath(encap), 'utf8')) as Fixture);
  const fresh: Fixture = {};
  const golden = (key: string, profile: Profile, queue: Queue): void => {
    test(`${encap} ${key}`, async () => {
      const got = await run(encap, profile, queue, stored[key]);
      fresh[key] = got;
      if (!UPDATE) assert.deepEqual(got, stored[key], `${encap} ${key} differs from ${fixturePath(encap)}`);
    });
  };
  for (const c of TX_CASES) {
    for (const profile of c.profiles) {
      golden(`tx ${profile}: ${c.name}`, profile, async (rig) => {
        for (const i of c.inputs) rig.send(i.packet, i.vnet);
        return c.inputs.map((i) => digest(i.packet));
      });
    }
  }
  for (const c of RX_CASES) {
    if (c.encaps && !c.encaps.includes(encap)) continue;
    for (const profile of c.profiles) {
      golden(`rx ${profile}: ${c.name}`, profile, async (rig, peer) => {
        const inputs = c.inputs(encap);
        await sendWire(peer, rig.port, inputs);
        return inputs.map((i) => digest(i.payload));
      });
    }
  }
  test(`${encap}: every stored case still runs`, () => {
    if (UPDATE) {
      writeFileSync(fixturePath(encap), JSON.stringify(fresh, null, 1) + '\n');
      return;
    }
    assert.deepEqual(Object.keys(fresh).sort(), Object.keys(stored).sort());
  });
}
