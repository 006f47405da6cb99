// Two native WireGuard devices wired together in memory, on a fake clock, for the protocol tests:
// what one sends on its own is delivered to the other when the test says so.
import { randomBytes } from 'node:crypto';
import { wireguardNative, type WgDevice, type WgEndpoint, type WgNow, type WgOutput, type WireGuardExports } from '../../src/native/wireguard.js';
import { icmpEcho, ipv4 } from './packets.js';

export const wg: WireGuardExports = wireguardNative();

export interface Side {
  dev: WgDevice;
  pub: Buffer;
  priv: Buffer;
  ep: WgEndpoint;
  /** Datagrams sent towards the other side, not yet delivered. */
  outbox: Buffer[];
}

export class Pair {
  readonly a: Side;
  readonly b: Side;
  readonly psk = randomBytes(32);
  t = 1000;
  readonly wall = Date.UTC(2025, 5, 1);

  constructor(opts: { timing?: { scale?: number; rekeyAfterMessages?: number; rejectAfterMessages?: number }; keepalive?: number; bKnowsA?: boolean } = {}) {
    const mk = (address: string): Side => {
      const priv = randomBytes(32);
      const dev = new wg.Device({ privateKey: priv, mtu: 1420, ...(opts.timing ? { timing: opts.timing } : {}) });
      return { dev, pub: dev.publicKey(), priv, ep: { address, port: 51820 }, outbox: [] };
    };
    this.a = mk('198.18.0.1');
    this.b = mk('198.18.0.2');
    this.a.dev.setPeer({ publicKey: this.b.pub, psk: this.psk, endpoint: this.b.ep, persistentKeepalive: opts.keepalive ?? 0 }, this.now());
    this.b.dev.setPeer({ publicKey: this.a.pub, psk: this.psk, ...(opts.bKnowsA === false ? {} : { endpoint: this.a.ep }) }, this.now());
  }

  now(): WgNow {
    return { mono: this.t, wall: this.wall + this.t };
  }

  other(s: Side): Side {
    return s === this.a ? this.b : this.a;
  }

  /** Queues what `from` sent (the datagrams go to the other side's outbox-in). */
  collect(from: Side, out: WgOutput): Buffer[] {
    const d = out.sends.map((s) => s.data);
    from.outbox.push(...d);
    return d;
  }

  /** Delivers everything `from` has sent to the other side; returns the receive results. */
  deliver(from: Side) {
    const to = this.other(from);
    const msgs = from.outbox.splice(0);
    return msgs.map((m) => {
      const r = to.dev.receive(m, from.ep, this.now());
      this.collect(to, r);
      return r;
    });
  }

  seal(from: Side, packet: Buffer = ping()) {
    const r = from.dev.seal(this.other(from).pub, packet, this.now());
    this.collect(from, r);
    if (r.datagram) from.outbox.push(r.datagram);
    return r;
  }

  tick(s: Side): Buffer[] {
    return this.collect(s, s.dev.tick(this.now()));
  }

  /** A completes a handshake with B (A initiates) and B confirms it with A's queued packet. */
  handshake(): void {
    this.seal(this.a);
    this.deliver(this.a); // initiation -> B answers
    this.deliver(this.b); // response -> A sends the queued packet
    this.deliver(this.a); // data -> B promotes the keypair
  }
}

let seq = 0;
/** An ICMP echo request 198.19.1.1 -> 198.19.2.1. */
export function ping(payload = 'flannelts'): Buffer {
  return ipv4({ src: '198.19.1.1', dst: '198.19.2.1', proto: 1, payload: icmpEcho(8, 7, ++seq & 0xffff, Buffer.from(payload)) });
}

/** Message type of a datagram (1 initiation, 2 response, 3 cookie reply, 4 data). */
export const typeOf = (d: Buffer): number => d.readUInt32LE(0);
export const isKeepalive = (d: Buffer): boolean => typeOf(d) === 4 && d.length === 32;
