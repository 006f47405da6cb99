// What `flannelctl status` and /metrics show: one snapshot built from the daemon's state and the
// backend's counters, read on demand (the engine's counters are native atomics).
import { createServer, request, type Server } from 'node:http';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Daemon } from './daemon.js';
import { formatCIDR, formatIP } from './ip/index.js';
import { log } from './log.js';
import { VERSION } from './version.js';

export interface Traffic {
  packets: number;
  bytes: number;
}

export interface PeerStatus {
  subnet?: string;
  ipv6Subnet?: string;
  publicIP?: string;
  publicIPv6?: string;
  backendType: string;
  expiration: string;
  /** Data-plane counters for this peer (udp backend); absent for kernel backends. */
  tx?: Traffic;
  rx?: Traffic;
}

export interface StatusSnapshot {
  version: string;
  pid: number;
  uptimeSeconds: number;
  backend?: string;
  /** 'userspace' for the vxlan backend's userspace VTEP; absent for kernel devices and udp. */
  mode?: string;
  device?: string;
  mtu?: number;
  externalInterface?: { name: string; mtu: number; publicIP?: string; publicIPv6?: string };
  lease?: { subnet?: string; ipv6Subnet?: string; expiration: string };
  peers: PeerStatus[];
  totals?: { tx: Traffic; rx: Traffic };
  drops?: Record<string, number>;
  /** Data-plane routes the engine holds vs the peer subnets the leases ask for. */
  routes?: { expected: number; installed: number };
  offloads?: Record<string, boolean>;
  /** The userspace VXLAN VTEP: our VtepMAC, VNI and ARP requests answered. */
  vtep?: { mac?: string; vni?: number; arpReplies: number };
  daemon: Daemon['counters'];
}

interface EnginePeerStats {
  subnet: string;
  tx: Traffic;
  rx: Traffic;
}
interface EngineStatsView {
  tx: Traffic;
  rx: Traffic;
  drops: Record<string, number>;
  peers: EnginePeerStats[];
  offloads?: Record<string, boolean>;
  arpReplies?: number;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isTraffic = (v: unknown): v is Traffic => isObj(v) && typeof v.packets === 'number' && typeof v.bytes === 'number';

/** The engine's counters when the backend has a native data plane (udp), checked by shape. */
export function engineStatsOf(backendStats: Record<string, unknown>): EngineStatsView | undefined {
  const e = backendStats.engine;
  if (!isObj(e) || !isTraffic(e.tx) || !isTraffic(e.rx) || !isObj(e.drops) || !Array.isArray(e.peers)) return undefined;
  const peers = e.peers.filter((p): p is EnginePeerStats => isObj(p) && typeof p.subnet === 'string' && isTraffic(p.tx) && isTraffic(p.rx));
  const drops = Object.fromEntries(Object.entries(e.drops).filter((kv): kv is [string, number] => typeof kv[1] === 'number'));
  const offloads = isObj(e.offloads)
    ? Object.fromEntries(Object.entries(e.offloads).filter((kv): kv is [string, boolean] => typeof kv[1] === 'boolean'))
    : undefined;
  return { tx: e.tx, rx: e.rx, drops, peers, offloads, arpReplies: typeof e.arpReplies === 'number' ? e.arpReplies : undefined };
}

const startedAt = Date.now();

export function snapshot(d: Daemon): StatusSnapshot {
  const backendStats = d.network?.stats() ?? {};
  const engine = engineStatsOf(backendStats);
  const bySubnet = new Map(engine?.peers.map((p) => [p.subnet, p]) ?? []);
  const peers: PeerStatus[] = [...d.peers.values()].map((l) => {
    const subnet = l.subnet ? formatCIDR(l.subnet) : undefined;
    const ipv6Subnet = l.ipv6Subnet ? formatCIDR(l.ipv6Subnet) : undefined;
    const counters = [subnet, ipv6Subnet].map((s) => (s ? bySubnet.get(s) : undefined)).filter((p): p is EnginePeerStats => p !== undefined);
    const sum = (k: 'tx' | 'rx'): Traffic => counters.reduce((acc, p) => ({ packets: acc.packets + p[k].packets, bytes: acc.bytes + p[k].bytes }), { packets: 0, bytes: 0 });
    return {
      subnet,
      ipv6Subnet,
      publicIP: l.attrs.publicIP ? formatIP(l.attrs.publicIP) : undefined,
      publicIPv6: l.attrs.publicIPv6 ? formatIP(l.attrs.publicIPv6) : undefined,
      backendType: l.attrs.backendType,
      expiration: l.expiration.toISOString(),
      ...(engine ? { tx: sum('tx'), rx: sum('rx') } : {}),
    };
  });
  const expected = [...d.peers.values()].reduce((n, l) => n + (l.subnet ? 1 : 0) + (l.ipv6Subnet ? 1 : 0), 0);
  const ext = d.extIface;
  return {
    version: VERSION,
    pid: process.pid,
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    backend: typeof backendStats.backend === 'string' ? backendStats.backend : d.config?.backend.type,
    mode: typeof backendStats.mode === 'string' ? backendStats.mode : undefined,
    device: typeof backendStats.device === 'string' ? backendStats.device : undefined,
    mtu: d.network?.mtu,
    externalInterface: ext && {
      name: ext.name,
      mtu: ext.mtu,
      publicIP: ext.publicIP ? formatIP(ext.publicIP) : undefined,
      publicIPv6: ext.publicIPv6 ? formatIP(ext.publicIPv6) : undefined,
    },
    lease: d.lease && {
      subnet: d.lease.subnet ? formatCIDR(d.lease.subnet) : undefined,
      ipv6Subnet: d.lease.ipv6Subnet ? formatCIDR(d.lease.ipv6Subnet) : undefined,
      expiration: d.lease.expiration.toISOString(),
    },
    peers,
    totals: engine && { tx: engine.tx, rx: engine.rx },
    drops: engine?.drops,
    routes: engine ? { expected, installed: engine.peers.length } : undefined,
    offloads: engine?.offloads,
    vtep:
      backendStats.mode === 'userspace'
        ? {
            mac: typeof backendStats.vtepMAC === 'string' ? backendStats.vtepMAC : undefined,
            vni: typeof backendStats.vni === 'number' ? backendStats.vni : undefined,
            arpReplies: engine?.arpReplies ?? 0,
          }
        : undefined,
    daemon: { ...d.counters },
  };
}

export const DEFAULT_STATUS_SOCKET = '/run/flannel/flannelts.sock';

/**
 * `flannelctl status` reads the daemon over a Unix socket that only root can open (mode 0600 on the
 * socket, 0700 on a directory we create): counters and topology are not for every local user.
 */
export async function startStatusServer(path: string, d: Daemon): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  rmSync(path, { force: true });
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(snapshot(d)));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`status socket ${path}: ${e.code ?? e.message}`)));
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  server.on('close', () => rmSync(path, { force: true }));
  log.v(1).info(`Status socket listening on ${path}`);
  return server;
}

/** Client side for `flannelctl status`. */
export function fetchStatus(path: string, timeoutMs = 3000): Promise<StatusSnapshot> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, path: '/status', method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as StatusSnapshot);
        } catch (e) {
          reject(new Error(`status from ${path}: bad reply: ${(e as Error).message}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`status from ${path}: timed out after ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      const hint = e.code === 'ENOENT' ? ' (is flanneld running? give its -status-socket with --socket)' : e.code === 'EACCES' ? ' (run as root)' : '';
      reject(new Error(`cannot read status from ${path}: ${e.code ?? e.message}${hint}`));
    });
    req.end();
  });
}
