// Handshakes between our protocol core and Debian's wireguard-go, configured by the real `wg`, in two
// network namespaces this run creates (198.18.0.0/15 underlay, 198.19.0.0/16 overlay): we initiate
// (our initiation and data, their response and an ICMP echo reply from their kernel), then a fresh
// wireguard-go initiates to us (their initiation, our response, their UDP data). With fixed static
// keys, PSK, ephemeral keys, indices and wall clock, the bytes are a fixture for the no-root tests:
//   node dist/test/helpers/wg-interop.js --write test/fixtures/wireguard/wireguard-go-handshake.json
// wireguard-go runs in its own mount namespace with a tmpfs /run, so its UAPI socket never touches
// the host's /var/run/wireguard; `wg` reaches it through nsenter.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsSet, run, type Namespace } from '../../src/lab/netns.js';
import { startWireguardGo, wgIn } from '../../src/lab/wireguard-go.js';
import { icmpEcho, ipv4 } from './packets.js';
import type { PeerParams, PeerRecord } from './wg-interop-peer.js';

// Keys of this fixture only: fixed bytes that protect nothing (X25519 takes any 32 bytes as a private key).
export const FIXTURE_KEYS = {
  ours: { private: '6Owjd6r1kk7qS3M9hk8w+2o0mYnTPyNQm1A7hjQSDnM=' },
  theirs: { private: 'UFnPXqFLVhGIYGHBRtsQDRn9nuI4eI0z6X6uXuxNymM=' },
  psk: '9qyPTtxTrXRVX7Ojs8n8/dnU/g8pH21rt1bNF5HvLRs=',
  // Our ephemeral keys and sender indices per scenario (any 32 bytes work as an X25519 private key).
  initiateEphemeral: '2f3e4d5c6b7a8998a7b6c5d4e3f201102f3e4d5c6b7a8998a7b6c5d4e3f20110',
  initiateIndex: 0x1a2b3c4d,
  respondEphemeral: '7766554433221100ffeeddccbbaa998877665544332211000123456789abcdef',
  respondIndex: 0x5e6f7081,
  wallMs: Date.UTC(2025, 0, 1, 12, 0, 0),
};

export interface InteropRecord {
  keys: typeof FIXTURE_KEYS & { ours: { public: string }; theirs: { public: string } };
  initiate: PeerRecord & { packet: string };
  respond: PeerRecord & { trigger: string };
}

const b64hex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex');

function publicKey(priv: string): string {
  return run('wg', ['pubkey'], { input: priv + '\n' }).trim();
}

interface Topology {
  set: NetnsSet;
  a: Namespace;
  b: Namespace;
  wgo: ChildProcess;
}

async function topology(keys: InteropRecord['keys'], tmp: string): Promise<Topology> {
  const set = new NetnsSet(`fwg${process.pid % 10000}`);
  try {
    const a = set.add('a');
    const b = set.add('b');
    a.ip('link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u0', 'netns', b.name);
    a.ip('addr', 'add', '198.18.0.1/24', 'dev', 'u0');
    b.ip('addr', 'add', '198.18.0.2/24', 'dev', 'u0');
    a.ip('link', 'set', 'u0', 'up');
    b.ip('link', 'set', 'u0', 'up');
    const wgo = await startWireguardGo(b, 'wgb');
    writeFileSync(join(tmp, 'b.key'), keys.theirs.private + '\n', { mode: 0o600 });
    writeFileSync(join(tmp, 'psk'), keys.psk + '\n', { mode: 0o600 });
    // As flannel's backend configures a device: key, port, one peer with endpoint, allowed IPs, PSK.
    wgIn(wgo, ['set', 'wgb', 'private-key', join(tmp, 'b.key'), 'listen-port', '51821', 'peer', keys.ours.public,
      'preshared-key', join(tmp, 'psk'), 'endpoint', '198.18.0.1:51820', 'allowed-ips', '198.19.1.0/24']);
    b.ip('addr', 'add', '198.19.2.1/32', 'dev', 'wgb');
    b.ip('link', 'set', 'wgb', 'up');
    b.ip('route', 'add', '198.19.1.0/24', 'dev', 'wgb');
    return { set, a, b, wgo };
  } catch (e) {
    await set.destroy();
    throw e;
  }
}

function ourPeer(topo: Topology, params: PeerParams): { child: ChildProcess; lines: AsyncGenerator<string> } {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'wg-interop-peer.js');
  const child = topo.a.spawn(process.execPath, [script, JSON.stringify(params)]);
  let buf = '';
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      queue.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    wake?.();
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.once('exit', () => {
    ended = true;
    wake?.();
  });
  async function* lines(): AsyncGenerator<string> {
    for (;;) {
      const l = queue.shift();
      if (l !== undefined) {
        yield l;
        continue;
      }
      if (ended) throw new Error(`our peer exited early: ${stderr.trim()}`);
      await new Promise<void>((r) => (wake = r));
    }
  }
  return { child, lines: lines() };
}

async function nextRecord(lines: AsyncGenerator<string>): Promise<PeerRecord> {
  for (;;) {
    const l = (await lines.next()).value as string;
    const o = JSON.parse(l) as PeerRecord & { ready?: boolean };
    if (!o.ready) return o;
  }
}

/** Runs both scenarios; every namespace and process it made is gone when it returns or throws. */
export async function captureWireguardGo(tmp: string): Promise<InteropRecord> {
  const k = FIXTURE_KEYS;
  const keys = { ...k, ours: { ...k.ours, public: publicKey(k.ours.private) }, theirs: { ...k.theirs, public: publicKey(k.theirs.private) } };
  const base = {
    ourPrivate: b64hex(keys.ours.private),
    theirPublic: b64hex(keys.theirs.public),
    psk: b64hex(keys.psk),
    wallMs: keys.wallMs,
    listen: { address: '198.18.0.1', port: 51820 },
    theirEndpoint: { address: '198.18.0.2', port: 51821 },
    timeoutMs: 10_000,
  };
  const packet = ipv4({ src: '198.19.1.1', dst: '198.19.2.1', proto: 1, id: 0x4711, payload: icmpEcho(8, 0x0f17, 1, Buffer.from('flannelts wireguard fixture')) });

  let topo = await topology(keys, tmp);
  let initiate: PeerRecord;
  try {
    const p = ourPeer(topo, { ...base, role: 'initiate', ephemeral: keys.initiateEphemeral, index: keys.initiateIndex, packet: packet.toString('hex') });
    initiate = await nextRecord(p.lines);
  } finally {
    await topo.set.destroy();
  }

  // A fresh wireguard-go, which knows no session yet: a packet into its TUN makes it initiate.
  topo = await topology(keys, tmp);
  const trigger = Buffer.from('flannelts: data after our response');
  let respond: PeerRecord;
  try {
    const p = ourPeer(topo, { ...base, role: 'respond', ephemeral: keys.respondEphemeral, index: keys.respondIndex });
    const ready = JSON.parse((await p.lines.next()).value as string) as { ready?: boolean };
    if (!ready.ready) throw new Error('our peer did not start');
    topo.b.exec(process.execPath, ['-e', `const s=require('dgram').createSocket('udp4');s.send(Buffer.from(${JSON.stringify(trigger.toString('hex'))},'hex'),9999,'198.19.1.1',()=>s.close())`]);
    respond = await nextRecord(p.lines);
  } finally {
    await topo.set.destroy();
  }
  return { keys, initiate: { ...initiate, packet: packet.toString('hex') }, respond: { ...respond, trigger: trigger.toString('hex') } };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const at = process.argv.indexOf('--write');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const tmp = mkdtempSync('/tmp/flannelts-wg-');
  try {
    const rec = await captureWireguardGo(tmp);
    const text = JSON.stringify(rec, null, 2) + '\n';
    if (at > 0 && process.argv[at + 1]) writeFileSync(process.argv[at + 1]!, text);
    else process.stdout.write(text);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
