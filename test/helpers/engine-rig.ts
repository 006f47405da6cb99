// The real native engine without root: its TUN is a FakeTun (fake-tun.ts), its underlay sockets are
// on loopback (127.0.0.1; peers on 127.0.0.2 and up), and a peer is either another rig or a plain
// UDP socket that records what arrives. Used by the test/unit/*engine*.test.ts files.
import { createSocket, type Socket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { Engine, type EngineOptions, type EngineStats, type PeerRoute } from '../../src/native/engine.js';
import { decodeVnetHeader, encodeVnetHeader, VNET_HDR_LEN, type VnetHeader } from '../../src/native/offload.js';
import { FakeTun } from './fake-tun.js';

/** What the engine is told was negotiated on its TUN. */
export interface TunOffloads {
  vnetHdr: boolean;
  tso: boolean;
  uso: boolean;
}

export const NO_TUN_OFFLOADS: TunOffloads = { vnetHdr: false, tso: false, uso: false };
export const ALL_TUN_OFFLOADS: TunOffloads = { vnetHdr: true, tso: true, uso: true };

export interface RigOptions extends Omit<EngineOptions, 'tun' | 'tunName' | 'bindV4'> {
  tunOffloads: TunOffloads;
  /** Underlay address; default 127.0.0.1. */
  address?: string;
}

/** A packet the engine wrote into its TUN: the virtio header (when negotiated) and the IP packet. */
export interface TunPacket {
  vnet: VnetHeader | null;
  packet: Buffer;
}

export class EngineRig {
  private closed = false;

  private constructor(
    readonly engine: Engine,
    readonly tun: FakeTun,
    readonly address: string,
    readonly offloads: TunOffloads,
  ) {}

  /** Opens the engine over a fresh FakeTun (not started: queue input first for deterministic batches). */
  static open(o: RigOptions): EngineRig {
    const tun = new FakeTun();
    const { tunOffloads, address = '127.0.0.1', ...rest } = o;
    try {
      const engine = Engine.open({ ...rest, bindV4: address, port: o.port ?? 0, tun: { fd: tun.fd, ...tunOffloads } });
      return new EngineRig(engine, tun, address, tunOffloads);
    } catch (e) {
      tun.close();
      throw e;
    }
  }

  get port(): number {
    return this.engine.port;
  }

  /** This rig as a peer route for another engine (its TUN owns subnet). */
  route(subnet: string, mac?: string): PeerRoute {
    return { subnet, publicIP: this.address, port: this.port, ...(mac ? { mac } : {}) };
  }

  /** Hands the engine one packet as its TUN would: with a virtio header when negotiated (default: none set). */
  send(packet: Buffer, vnet: Partial<VnetHeader> = {}): void {
    this.tun.write(this.offloads.vnetHdr ? Buffer.concat([encodeVnetHeader(vnet), packet]) : packet);
  }

  /** Splits what the engine wrote into its virtio header and packet. */
  parse(raw: Buffer): TunPacket {
    if (!this.offloads.vnetHdr) return { vnet: null, packet: raw };
    return { vnet: decodeVnetHeader(raw.subarray(0, VNET_HDR_LEN)), packet: raw.subarray(VNET_HDR_LEN) };
  }

  async received(n: number, ms = 5000): Promise<TunPacket[]> {
    return (await this.tun.take(n, ms)).map((r) => this.parse(r));
  }

  async drain(quietMs = 150): Promise<TunPacket[]> {
    return (await this.tun.drain(quietMs)).map((r) => this.parse(r));
  }

  stats(): EngineStats {
    return this.engine.stats();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.engine.close();
    this.tun.close();
  }
}

/** A datagram that reached a UdpPeer. */
export interface Datagram {
  data: Buffer;
  from: string;
  port: number;
}

/** A plain UDP socket standing in for a peer node: records every datagram it gets. */
export class UdpPeer {
  private readonly got: Datagram[] = [];

  private constructor(private readonly sock: Socket) {
    sock.on('message', (data, rinfo) => this.got.push({ data, from: rinfo.address, port: rinfo.port }));
  }

  static async bind(address: string, port: number): Promise<UdpPeer> {
    const sock = createSocket({ type: address.includes(':') ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(port, address, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    return new UdpPeer(sock);
  }

  get port(): number {
    return this.sock.address().port;
  }

  async send(payload: Buffer, address: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => this.sock.send(payload, port, address, (e) => (e ? reject(e) : resolve())));
  }

  /** Waits until n datagrams have come (at most ms) and takes them; fewer when time ran out. */
  async take(n: number, ms = 5000): Promise<Datagram[]> {
    const deadline = Date.now() + ms;
    while (this.got.length < n && Date.now() < deadline) await sleep(2);
    return this.got.splice(0, n);
  }

  /** Everything until nothing more comes for quietMs. */
  async drain(quietMs = 150): Promise<Datagram[]> {
    let seen = -1;
    while (seen !== this.got.length) {
      seen = this.got.length;
      await sleep(quietMs);
    }
    return this.got.splice(0);
  }

  close(): void {
    this.sock.close();
  }
}

/** Polls cond every 5 ms for up to ms; true as soon as it holds. */
export async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() >= deadline) return false;
    await sleep(5);
  }
  return true;
}
