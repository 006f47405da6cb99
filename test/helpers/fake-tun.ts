// The test-only native helpers (native/testing/fake_tun.cc): a socketpair(SOCK_SEQPACKET) standing in
// for a TUN so the real engine runs without root, and UDP sockets Node cannot make (an fd to inject,
// a UDP_SEGMENT send). Read native/testing/README.md for where the fake differs from a TUN.
import { setTimeout as sleep } from 'node:timers/promises';
import { loadNativeModule } from '../../src/native/addon.js';

interface NativeFakeTun {
  readonly engineFd: number;
  readonly pending: number;
  readonly truncated: number;
  write(packet: Buffer): void;
  read(): Buffer | null;
  close(): void;
}

export interface UdpSendOptions {
  /** Source address (a fresh socket bound to it, ephemeral port). */
  from: string;
  to: string;
  port: number;
  payload: Buffer;
  /** UDP_SEGMENT size: the payload leaves as datagrams of this size in one GSO send. */
  segmentSize?: number;
}

interface TestingExports {
  FakeTun: new () => NativeFakeTun;
  udpSocket(address: string, port: number): number;
  udpSend(o: UdpSendOptions): number;
}

let loaded: TestingExports | undefined;
function testing(): TestingExports {
  loaded ??= loadNativeModule('flannelts_testing') as unknown as TestingExports;
  return loaded;
}

export class FakeTun {
  private readonly native = new (testing().FakeTun)();

  /** The engine's end: pass it as EngineOptions.tun.fd (the engine dup()s it; close() closes this one). */
  get fd(): number {
    return this.native.engineFd;
  }

  /** Writes one packet for the engine to read (virtio header first when the engine was told vnetHdr). */
  write(packet: Buffer): void {
    this.native.write(packet);
  }

  /** The next whole packet the engine wrote, or null. */
  read(): Buffer | null {
    return this.native.read();
  }

  /** Packets longer than the reader's buffer (128 KiB): never expected. */
  get truncated(): number {
    return this.native.truncated;
  }

  /** Waits until n packets have come (at most ms) and returns them; fewer when time ran out. */
  async take(n: number, ms = 5000): Promise<Buffer[]> {
    const out: Buffer[] = [];
    const deadline = Date.now() + ms;
    while (out.length < n) {
      const p = this.native.read();
      if (p) {
        out.push(p);
        continue;
      }
      if (Date.now() >= deadline) break;
      await sleep(2);
    }
    return out;
  }

  /** Everything the engine writes until nothing more comes for quietMs. */
  async drain(quietMs = 150): Promise<Buffer[]> {
    const out: Buffer[] = [];
    let last = Date.now();
    while (Date.now() - last < quietMs) {
      const p = this.native.read();
      if (p) {
        out.push(p);
        last = Date.now();
      } else {
        await sleep(2);
      }
    }
    return out;
  }

  close(): void {
    this.native.close();
  }
}

/** A bound, non-blocking UDP socket fd (EngineOptions.sockets); close it with fs.closeSync. */
export function udpSocketFd(address: string, port: number): number {
  return testing().udpSocket(address, port);
}

/** One sendmsg from a fresh socket bound to o.from; with segmentSize a UDP_SEGMENT (GSO) send. */
export function udpSend(o: UdpSendOptions): number {
  return testing().udpSend(o);
}
