// A WireGuard peer made of the protocol core's JavaScript binding (wg.Device) on a plain UDP socket:
// a third node the engine tests control byte by byte (forge, replay, reorder what it sends).
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import type { WgDevice, WgEndpoint, WgNow, WgOutput } from '../../src/native/wireguard.js';
import { UdpPeer } from './engine-rig.js';
import { wg } from './wg-pair.js';
import { peer, type PeerDesc, type WgNode } from './wg-rig.js';

export class JsPeer {
  readonly dev: WgDevice;
  readonly key = randomBytes(32);
  /** Decrypted inner packets, in arrival order. */
  readonly inner: Buffer[] = [];
  /** Every datagram received, in order. */
  readonly received: Buffer[] = [];

  private constructor(
    readonly sock: UdpPeer,
    readonly address: string,
    readonly subnet: string,
  ) {
    this.dev = new wg.Device({ privateKey: this.key, mtu: 1420 });
  }

  static async open(address: string, subnet: string): Promise<JsPeer> {
    return new JsPeer(await UdpPeer.bind(address, 0), address, subnet);
  }

  get port(): number {
    return this.sock.port;
  }

  now(): WgNow {
    return { mono: performance.now(), wall: Date.now() };
  }

  get desc(): PeerDesc {
    return { publicKey: this.dev.publicKey(), address: this.address, port: this.port, subnets: [this.subnet] };
  }

  /** Makes `node` and this peer know each other (node routes `subnet` to us, besides `others`). */
  pairWith(node: WgNode, o: { psk?: Buffer; others?: PeerDesc[] } = {}): WgEndpoint {
    const ep = { address: node.address, port: node.rig.port };
    this.dev.setPeer({ publicKey: node.wg.publicKey(), ...(o.psk ? { psk: o.psk } : {}), endpoint: ep }, this.now());
    peer(node, this.desc, o);
    return ep;
  }

  async sendAll(out: WgOutput): Promise<void> {
    for (const s of out.sends) await this.sock.send(s.data, s.to.address, s.to.port);
  }

  /** Receives what arrived (for up to ms), feeding the device and sending what it answers. */
  async pump(ms = 200): Promise<void> {
    for (const d of await this.sock.drain(ms)) {
      this.received.push(d.data);
      const r = this.dev.receive(d.data, { address: d.from, port: d.port }, this.now());
      if (r.inner) this.inner.push(r.inner);
      await this.sendAll(r);
    }
  }

  /** A packet to `to` sealed now (the datagram, not sent), or the handshake started for it. */
  seal(to: Buffer, packet: Buffer): { datagram?: Buffer; out: WgOutput } {
    const r = this.dev.seal(to, packet, this.now());
    return { datagram: r.datagram, out: r };
  }

  close(): void {
    this.sock.close();
  }
}
