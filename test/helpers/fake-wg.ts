// In-memory doubles of a WireGuard device factory and of the link operations on its device, for the
// wireguard backend's unit tests: what was created, each device's peers, addresses and routes.
import { formatCIDR, formatIP, type Family, type IPAddr, type IPNet } from '../../src/ip/index.js';
import type { WgDevice, WgDeviceFactory, WgDeviceSpec, WgPeerConfig, WgPeerStatus } from '../../src/backend/wireguard/device.js';
import type { WgLinkOps } from '../../src/backend/wireguard/network.js';

export class FakeWgDevice implements WgDevice {
  readonly peerMap = new Map<string, WgPeerConfig>();
  closed = false;
  constructor(
    readonly name: string,
    readonly index: number,
    readonly kind: 'kernel' | 'userspace',
    readonly spec: WgDeviceSpec,
  ) {}
  async setPeer(p: WgPeerConfig): Promise<void> {
    this.peerMap.set(p.publicKey, { ...p, allowedIPs: [...p.allowedIPs] });
  }
  async removePeer(publicKey: string): Promise<void> {
    this.peerMap.delete(publicKey);
  }
  async peers(): Promise<WgPeerStatus[]> {
    return this.peersNow();
  }
  peersNow(): WgPeerStatus[] {
    return [...this.peerMap.values()].map((p) => ({ publicKey: p.publicKey, endpoint: p.endpoint, allowedIPs: p.allowedIPs, persistentKeepalive: p.persistentKeepalive, lastHandshakeMs: 0, rxBytes: 0, txBytes: 0 }));
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  /** "key endpoint allowed,ips" lines, sorted. */
  lines(): string[] {
    return [...this.peerMap.values()].map((p) => `${p.publicKey} ${p.endpoint ?? '-'} ${p.allowedIPs.map(formatCIDR).join(',')}`).sort();
  }
}

export class FakeWgFactory implements WgDeviceFactory {
  readonly created: FakeWgDevice[] = [];
  /** errno code to fail create() with (a kernel without WireGuard: EOPNOTSUPP). */
  failWith?: string;
  private static nextIndex = 100;
  constructor(readonly kind: 'kernel' | 'userspace') {}
  async create(spec: WgDeviceSpec): Promise<WgDevice> {
    if (this.failWith) throw Object.assign(new Error(`netlink: RTM_NEWLINK ${spec.name}: ${this.failWith}`), { code: this.failWith });
    const d = new FakeWgDevice(spec.name, FakeWgFactory.nextIndex++, this.kind, spec);
    this.created.push(d);
    return d;
  }
  device(name: string): FakeWgDevice {
    const d = this.created.find((x) => x.name === name && !x.closed);
    if (!d) throw new Error(`no device ${name}`);
    return d;
  }
}

export class FakeWgLinks implements WgLinkOps {
  readonly addrs: { index: number; addr: IPAddr; prefixLen: number }[] = [];
  readonly routes: { index: number; dst: IPNet }[] = [];
  readonly up = new Set<number>();
  listAddrs(index: number, family: Family) {
    return this.addrs.filter((a) => a.index === index && a.addr.family === family);
  }
  addAddr(index: number, addr: IPAddr, prefixLen: number): void {
    this.addrs.push({ index, addr, prefixLen });
  }
  delAddr(index: number, addr: IPAddr, prefixLen: number): void {
    const i = this.addrs.findIndex((a) => a.index === index && a.addr.value === addr.value && a.prefixLen === prefixLen);
    if (i >= 0) this.addrs.splice(i, 1);
  }
  setUp(index: number): void {
    this.up.add(index);
  }
  replaceRoute(index: number, dst: IPNet): void {
    const i = this.routes.findIndex((r) => formatCIDR(r.dst) === formatCIDR(dst));
    if (i >= 0) this.routes.splice(i, 1);
    this.routes.push({ index, dst });
  }
  addrLines(index: number): string[] {
    return this.addrs.filter((a) => a.index === index).map((a) => `${formatIP(a.addr)}/${a.prefixLen}`);
  }
  routeLines(): string[] {
    return this.routes.map((r) => `${formatCIDR(r.dst)} dev #${r.index} scope link`).sort();
  }
}
