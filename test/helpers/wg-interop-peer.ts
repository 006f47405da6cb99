// Our side of a handshake with a real wireguard-go, run inside a network namespace by wg-interop.ts
// (`ip netns exec <ns> node wg-interop-peer.js '<json>'`): the native protocol core on a plain UDP
// socket, with a fixed ephemeral key, sender index and wall clock so the bytes can be kept as a
// fixture. Prints one JSON line per event on stdout: {"ready":true}, then the record.
import { createSocket, type RemoteInfo } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { wireguardNative, type WgEndpoint, type WgOutput } from '../../src/native/wireguard.js';

export interface PeerParams {
  role: 'initiate' | 'respond';
  ourPrivate: string;
  theirPublic: string;
  psk: string;
  ephemeral: string;
  index: number;
  wallMs: number;
  listen: WgEndpoint;
  theirEndpoint: WgEndpoint;
  /** initiate: the inner packet we send once the session is up (hex). */
  packet?: string;
  timeoutMs: number;
}

export interface PeerRecord {
  /** Every datagram we sent and received, in order, hex. */
  sent: string[];
  received: string[];
  /** Decrypted inner packets (hex, with WireGuard's zero padding). */
  inner: string[];
  reasons: string[];
  error?: string;
}

function main(params: PeerParams): void {
  const wg = wireguardNative();
  const hex = (s: string): Buffer => Buffer.from(s, 'hex');
  const dev = new wg.Device({ privateKey: hex(params.ourPrivate), mtu: 1420 });
  const index = Buffer.alloc(4);
  index.writeUInt32LE(params.index);
  dev.injectRandom(Buffer.concat([hex(params.ephemeral), index]));
  // The wall clock stays at wallMs: it only sets the initiation's timestamp, which the fixture fixes.
  const now = () => ({ mono: performance.now(), wall: params.wallMs });
  const record: PeerRecord = { sent: [], received: [], inner: [], reasons: [] };
  const sock = createSocket('udp4');
  const peer = hex(params.theirPublic);
  let done = false;

  const finish = (error?: string): void => {
    if (done) return;
    done = true;
    if (error) record.error = error;
    process.stdout.write(JSON.stringify(record) + '\n');
    sock.close();
    clearTimeout(timer);
  };
  const timer = setTimeout(() => finish(`timed out after ${params.timeoutMs} ms`), params.timeoutMs);
  const flush = (out: WgOutput): void => {
    for (const s of out.sends) {
      record.sent.push(s.data.toString('hex'));
      sock.send(s.data, s.to.port, s.to.address);
    }
  };

  sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    record.received.push(msg.toString('hex'));
    const r = dev.receive(msg, { address: rinfo.address, port: rinfo.port }, now());
    record.reasons.push(r.reason);
    flush(r);
    if (r.inner) {
      record.inner.push(r.inner.toString('hex'));
      finish();
    }
  });
  sock.bind(params.listen.port, params.listen.address, () => {
    const out = dev.setPeer({ publicKey: peer, psk: hex(params.psk), endpoint: params.theirEndpoint }, now());
    flush(out);
    if (params.role === 'initiate' && params.packet) {
      const r = dev.seal(peer, hex(params.packet), now());
      record.reasons.push(r.reason);
      flush(r);
    }
    process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  });
}

main(JSON.parse(process.argv[2] ?? '{}') as PeerParams);
