// Our userspace WireGuard device: the native engine with the wireguard encapsulation on a TUN that
// carries the device's name (flannel-wg, flannel-wg-v6), configured like a kernel device (key, listen
// port, peers with endpoint and allowed IPs) and readable like wireguard-go's through the UAPI socket
// (`wg show`). TypeScript keeps the configuration (peer-model.ts) and pushes it down: peers to the
// native interface, allowed IPs as the engine's routes. Packets never come up here; only cookie jobs
// (XChaCha20-Poly1305 from libsodium) do, and only under a handshake flood.
import type { CaptureSource } from '../../capture/session.js';
import { formatIP, mustParseIP } from '../../ip/index.js';
import { log } from '../../log.js';
import type { Engine, EngineOptions } from '../../native/engine.js';
import type { WgInterface, WgInterfaceOptions, WgInterfacePeer } from '../../native/wireguard.js';
import { answerCookieJobs } from './cookie-crypto.js';
import type { WgDevice, WgDeviceFactory, WgDeviceSpec, WgPeerConfig, WgPeerStatus } from './device.js';
import { WgPeerModel, type ModelChange, type ModelEndpoint } from './peer-model.js';
import { formatEndpointText, UapiError, EINVAL, type UapiDeviceState, type UapiSet } from './uapi-codec.js';
import { UapiServer, UAPI_DIR } from './uapi-server.js';

/** What the engine handle must offer (the real Engine, or a double). */
export type WgEngine = Pick<Engine, 'tunName' | 'tunIndex' | 'port' | 'setPeers' | 'start' | 'stats' | 'close' | 'startCapture' | 'readCapture' | 'stopCapture'>;

export interface UserspaceWgPlatform {
  /** The native interface (keys, peers, sessions). */
  newInterface(o: WgInterfaceOptions): WgInterface;
  /** An engine on a TUN named o.tunName, with o.encap 'wireguard'. */
  openEngine(o: EngineOptions): WgEngine;
  /** Drop reason names in the engine's order (captures). */
  dropReasons(): readonly string[];
  /** A link of that name left behind (a kernel device, a TUN) is deleted; the TUN gets the MTU. */
  links: {
    findLink(name: string): { index: number } | undefined;
    deleteLink(index: number): void;
    setMtu(index: number, mtu: number): void;
  };
  /** Where `wg` looks for UAPI sockets; default /var/run/wireguard. */
  uapiDir?: string;
  /** Test hook (FLANNELTS_WG_TIMING_SCALE): every protocol duration divided by this. */
  timingScale?: number;
  /** Engine options from flanneld's flags (offloads, reply polling, threads). */
  engineOptions?: Partial<EngineOptions>;
}

const toEndpointText = (e: ModelEndpoint | { address: string; port: number }): string =>
  'ip' in e ? formatEndpointText(e) : e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;

export class UserspaceWgDevice implements WgDevice {
  readonly kind = 'userspace' as const;
  readonly capture: CaptureSource;
  private readonly model: WgPeerModel;
  private uapi?: UapiServer;
  private privateKey: Buffer;
  private closed = false;

  constructor(
    private readonly spec: WgDeviceSpec,
    private readonly wg: WgInterface,
    private readonly engine: WgEngine,
    reasons: readonly string[],
  ) {
    this.privateKey = spec.privateKey;
    this.model = new WgPeerModel(() => this.wg.publicKey());
    this.capture = {
      device: spec.name,
      reasons,
      start: (f) => engine.startCapture(f),
      read: () => engine.readCapture(),
      stop: () => engine.stopCapture(),
    };
    wg.onCookieJobs(() => this.cookieJobs());
  }

  get name(): string {
    return this.spec.name;
  }

  get index(): number {
    return this.engine.tunIndex;
  }

  /** The port the device listens on (the one asked for, or the kernel's choice for 0). */
  get port(): number {
    return this.engine.port;
  }

  /** Serves `wg show` / `wg set` at <dir>/<name>.sock; a failure only costs the socket (logged). */
  async serveUapi(dir: string): Promise<void> {
    try {
      this.uapi = await UapiServer.open(this.spec.name, { get: () => this.uapiState(), set: (r) => this.uapiSet(r) }, dir);
    } catch (e) {
      log.warning(`wireguard: ${this.spec.name}: no UAPI socket in ${dir} (wg show will not see the device): ${(e as Error).message}`);
    }
  }

  async setPeer(p: WgPeerConfig): Promise<void> {
    this.apply(this.model.setPeer(p));
  }

  async removePeer(publicKey: string): Promise<void> {
    this.apply(this.model.removePeer(Buffer.from(publicKey, 'base64')));
  }

  async peers(): Promise<WgPeerStatus[]> {
    return this.peersNow();
  }

  peersNow(): WgPeerStatus[] {
    const live = this.livePeers();
    return this.model.list().map((p) => {
      const n = live.get(p.publicKey.toString('hex'));
      const configured = p.endpoint ? toEndpointText(p.endpoint) : undefined;
      return {
        publicKey: p.publicKey.toString('base64'),
        endpoint: n?.endpoint ? toEndpointText(n.endpoint) : configured,
        configuredEndpoint: configured,
        allowedIPs: p.allowedIPs,
        persistentKeepalive: p.persistentKeepalive,
        lastHandshakeMs: n?.lastHandshakeMs ?? 0,
        rxBytes: n?.rxBytes ?? 0,
        txBytes: n?.txBytes ?? 0,
      };
    });
  }

  dataPlane() {
    return { engine: this.engine.stats(), wireguard: this.wg.counters() };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wg.onCookieJobs(null);
    await this.uapi?.close();
    // The TUN goes with its file descriptor; the key and the leases stay.
    this.engine.close();
    this.wg.close();
  }

  /** Pushes a configuration change down: peers first, then the routes naming them, then removals. */
  private apply(c: ModelChange): void {
    if (this.closed) throw new Error(`${this.spec.name} is closed`);
    for (const { peer, endpointChanged } of c.set) {
      this.wg.setPeer({
        publicKey: peer.publicKey,
        ...(peer.presharedKey ? { psk: peer.presharedKey } : {}),
        // Unchanged, the endpoint is not handed over again: the peer may have roamed since.
        ...(endpointChanged && peer.endpoint ? { endpoint: { address: formatIP(peer.endpoint.ip), port: peer.endpoint.port } } : {}),
        persistentKeepalive: peer.persistentKeepalive,
      });
    }
    if (c.routes) this.engine.setPeers(this.model.routes());
    for (const k of c.removed) this.wg.removePeer(k);
  }

  private livePeers(): Map<string, WgInterfacePeer> {
    return new Map(this.wg.peers().map((p) => [p.publicKey.toString('hex'), p]));
  }

  private uapiState(): UapiDeviceState {
    const live = this.livePeers();
    return {
      privateKey: this.privateKey,
      listenPort: this.spec.listenPort,
      fwmark: 0,
      peers: this.model.list().map((p) => {
        const n = live.get(p.publicKey.toString('hex'));
        const ms = n?.lastHandshakeMs ?? 0;
        const ep = n?.endpoint ? { address: n.endpoint.address, port: n.endpoint.port } : undefined;
        return {
          publicKey: p.publicKey,
          presharedKey: p.presharedKey,
          endpoint: ep ? { ip: mustParseIP(ep.address), port: ep.port } : p.endpoint,
          lastHandshakeSec: Math.floor(ms / 1000),
          lastHandshakeNsec: Math.round((ms % 1000) * 1e6),
          txBytes: BigInt(n?.txBytes ?? 0),
          rxBytes: BigInt(n?.rxBytes ?? 0),
          persistentKeepalive: p.persistentKeepalive,
          allowedIPs: p.allowedIPs,
        };
      }),
    };
  }

  private uapiSet(r: UapiSet): void {
    if (r.listenPort !== undefined && r.listenPort !== this.spec.listenPort) {
      throw new UapiError(EINVAL, `failed to set listen_port ${r.listenPort}: ${this.spec.name} keeps listening on ${this.spec.listenPort} (flannel's ListenPort)`);
    }
    if (r.fwmark !== undefined && r.fwmark !== 0) throw new UapiError(EINVAL, `failed to set fwmark: ${this.spec.name} has no fwmark support`);
    if (r.privateKey) {
      if (!this.wg.setPrivateKey(r.privateKey)) throw new UapiError(EINVAL, 'failed to set private_key: unusable key');
      this.privateKey = r.privateKey;
    }
    this.apply(this.model.applyUapi(r));
  }

  private cookieJobs(): void {
    const jobs = this.wg.takeCookieJobs();
    const r = answerCookieJobs(this.wg, jobs, { mono: performance.now(), wall: Date.now() });
    if (r.cookiesRejected) log.v(2).info(`wireguard: ${this.spec.name}: ${r.cookiesRejected} cookie replies did not open`);
  }
}

/** Our userspace device as a WgDeviceFactory (the backend's fallback, or -wireguard-userspace). */
export function userspaceWgFactory(p: UserspaceWgPlatform): WgDeviceFactory {
  return {
    async create(spec: WgDeviceSpec): Promise<WgDevice> {
      const old = p.links.findLink(spec.name);
      if (old) {
        log.warning(`wireguard: removing the existing device ${spec.name}: the userspace device takes its name`);
        p.links.deleteLink(old.index);
      }
      const wg = p.newInterface({ privateKey: spec.privateKey, mtu: spec.mtu, ...(p.timingScale ? { timingScale: p.timingScale } : {}) });
      if (p.timingScale) log.warning(`wireguard: FLANNELTS_WG_TIMING_SCALE=${p.timingScale}: every WireGuard timer of ${spec.name} is ${p.timingScale}x shorter (test hook)`);
      let engine: WgEngine;
      try {
        engine = p.openEngine({
          ...p.engineOptions,
          tunName: spec.name,
          bindV4: '0.0.0.0',
          ...(spec.ipv6 ? { bindV6: '::' } : {}),
          port: spec.listenPort,
          encap: 'wireguard',
          wireguard: wg,
          ...(spec.ipv6 && spec.alsoListenPort && spec.alsoListenPort !== spec.listenPort ? { alsoPortV6: spec.alsoListenPort } : {}),
        });
      } catch (e) {
        wg.close();
        throw e;
      }
      const dev = new UserspaceWgDevice(spec, wg, engine, p.dropReasons());
      try {
        p.links.setMtu(engine.tunIndex, spec.mtu);
        engine.start();
        await dev.serveUapi(p.uapiDir ?? UAPI_DIR);
      } catch (e) {
        await dev.close();
        throw e;
      }
      const also = spec.ipv6 && spec.alsoListenPort && spec.alsoListenPort !== spec.listenPort ? ` (and [::]:${spec.alsoListenPort}, the port our lease advertises for IPv6)` : '';
      log.info(`wireguard: userspace ${spec.name} listening on port ${spec.listenPort}${also}, MTU ${spec.mtu}`);
      return dev;
    },
  };
}
