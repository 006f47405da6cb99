// Debian's wireguard-go as a lab node's WireGuard device, set up with `wg` and `ip` exactly as
// flannel's wireguard backend sets up a kernel device (pkg/backend/wireguard device.go): private key,
// listen port, the lease subnet's network address as a /32 (/128), MTU = underlay MTU - 80, link up,
// one scope-link route for the whole network, and per peer lease one peer with endpoint and allowed
// IPs (PSK and keepalive when the net-conf has them). For the bench's wireguard-go row and the interop
// tests. wireguard-go runs in a /run of its own (a tmpfs in its mount namespace), so its UAPI socket
// never touches the host's /var/run/wireguard; `wg` reaches it through nsenter.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../util/sleep.js';
import { run, type Namespace } from './netns.js';

export interface WgGoPeer {
  publicKey: string;
  /** "ip:port" or "[ip6]:port". */
  endpoint?: string;
  allowedIPs: string[];
}

export interface WgGoDeviceOptions {
  /** flannel-wg or flannel-wg-v6. */
  name: string;
  privateKey: string;
  listenPort: number;
  /** Device MTU (flannel: underlay MTU - 80). */
  mtu: number;
  /** The lease subnets' network addresses on the device: "198.19.5.0/32", "2001:db8:100:5::/128". */
  addresses: string[];
  /** The networks routed via the device (scope link): "198.19.0.0/16", "2001:db8:100::/56". */
  routes: string[];
  /** Base64 PSK on every peer, as flannel's PSK option. */
  psk?: string;
  /** PersistentKeepaliveInterval on every peer (seconds; 0 off). */
  keepalive?: number;
  /** Key files go here (the PSK and private key are handed to wg as files). */
  dir: string;
}

/** Starts wireguard-go in its own /run; resolves once `wg show` answers. */
export async function startWireguardGo(ns: Namespace, name: string): Promise<ChildProcess> {
  const child = ns.spawn('sh', ['-c', `mount -t tmpfs flannelts-wg /run && mkdir -p /run/wireguard && exec wireguard-go -f ${name}`], {
    env: { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1', LOG_LEVEL: 'error' },
  });
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`wireguard-go ${name} in ${ns.name} exited with ${child.exitCode}`);
    try {
      wgIn(child, ['show', name]);
      return child;
    } catch {
      await sleep(25);
    }
  }
  throw new Error(`wireguard-go ${name} in ${ns.name} did not come up`);
}

/** `wg args` in the mount and network namespaces of a wireguard-go process. */
export function wgIn(wgo: ChildProcess, args: string[], input?: string): string {
  return run('nsenter', ['-t', String(wgo.pid), '-m', '-n', 'wg', ...args], input === undefined ? {} : { input });
}

export class WireguardGoDevice {
  private constructor(
    readonly ns: Namespace,
    readonly proc: ChildProcess,
    readonly o: WgGoDeviceOptions,
  ) {}

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** wireguard-go up and configured as flannel configures its device, before any peer. */
  static async start(ns: Namespace, o: WgGoDeviceOptions): Promise<WireguardGoDevice> {
    const proc = await startWireguardGo(ns, o.name);
    const dev = new WireguardGoDevice(ns, proc, o);
    const keyFile = join(o.dir, `${ns.name}-${o.name}.key`);
    writeFileSync(keyFile, o.privateKey + '\n', { mode: 0o600 });
    dev.wg(['set', o.name, 'private-key', keyFile, 'listen-port', String(o.listenPort)]);
    for (const a of o.addresses) ns.ip(...(a.includes(':') ? ['-6'] : []), 'addr', 'add', a, 'dev', o.name);
    ns.ip('link', 'set', o.name, 'mtu', String(o.mtu), 'up');
    for (const r of o.routes) ns.ip(...(r.includes(':') ? ['-6'] : []), 'route', 'replace', r, 'dev', o.name, 'scope', 'link');
    return dev;
  }

  wg(args: string[], input?: string): string {
    return wgIn(this.proc, args, input);
  }

  /** flannel's AddPeer: endpoint, allowed IPs replaced (what wg's allowed-ips does), PSK and keepalive from the net-conf. */
  setPeer(p: WgGoPeer): void {
    const args = ['set', this.o.name, 'peer', p.publicKey, 'allowed-ips', p.allowedIPs.join(',')];
    if (p.endpoint) args.push('endpoint', p.endpoint);
    if (this.o.psk) {
      const pskFile = join(this.o.dir, `${this.ns.name}-${this.o.name}.psk`);
      writeFileSync(pskFile, this.o.psk + '\n', { mode: 0o600 });
      args.push('preshared-key', pskFile);
    }
    if (this.o.keepalive) args.push('persistent-keepalive', String(this.o.keepalive));
    this.wg(args);
  }

  removePeer(publicKey: string): void {
    this.wg(['set', this.o.name, 'peer', publicKey, 'remove']);
  }

  /** `wg show <dev> dump`: the device line, then one line per peer (tab-separated fields). */
  dump(): string[][] {
    return this.wg(['show', this.o.name, 'dump'])
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
  }
}

/** A fresh key pair from `wg genkey` / `wg pubkey` (base64). */
export function wgKeyPair(): { privateKey: string; publicKey: string } {
  const privateKey = run('wg', ['genkey']).trim();
  return { privateKey, publicKey: run('wg', ['pubkey'], { input: privateKey + '\n' }).trim() };
}
