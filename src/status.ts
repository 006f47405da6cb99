// What `flannelctl status` and /metrics show: one snapshot built from the daemon's state and the
// backend's counters, read on demand (the engine's counters are native atomics).
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Daemon } from './daemon.js';
import type { DirectionStats, OffloadFlags, PeerStats, ReplyPollStats, ThreadStats } from './native/engine.js';
import { formatCIDR, formatIP } from './ip/index.js';
import { log } from './log.js';
import { VERSION } from './version.js';
import { CaptureOptionError, describeRequest, fromQuery, type CaptureRequest } from './capture/options.js';
import { CaptureSession } from './capture/session.js';
import type { WatchStatus } from './subnet/watch-health.js';
import { wireguardStatus, type WireguardStatus } from './status-wireguard.js';

/** Packets and bytes one way. */
export type Traffic = DirectionStats;

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
  /** When the data plane last accepted a packet from this peer (ISO time, to within a second), or "never". */
  lastSeen?: string;
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
  offloads?: OffloadFlags;
  /** The engine's reply polling after small sends (-udp-reply-poll-us): window and outcomes. */
  replyPoll?: ReplyPollStats;
  /** The engine's data-plane threads: one for both directions, or two while both are busy. */
  threads?: ThreadStats;
  /** The userspace VXLAN VTEP: our VtepMAC, VNI and ARP requests answered. */
  vtep?: { mac?: string; vni?: number; arpReplies: number };
  /** Whether a `flannelctl capture` runs, and records lost to a full capture buffer (all captures). */
  capture?: { active: boolean; lost: number };
  /** The lease store's watch: confirmed, last event, last re-list, replacements by reason. */
  watch?: WatchStatus;
  /** The wireguard backend: its devices and every peer's latest handshake and bytes (status-wireguard.ts). */
  wireguard?: WireguardStatus;
  daemon: Daemon['counters'];
}

/** A peer's last-seen time from its engine entries (v4 and v6 subnets): the latest, or "never". */
export function lastSeenOf(entries: Array<Pick<PeerStats, 'lastRxMs'>>): string {
  const ms = Math.max(0, ...entries.map((p) => p.lastRxMs));
  return ms > 0 ? new Date(ms).toISOString() : 'never';
}

const startedAt = Date.now();

export function snapshot(d: Daemon): StatusSnapshot {
  const backendStats = d.network?.stats() ?? {};
  const engine = backendStats.engine;
  const bySubnet = new Map(engine?.peers.map((p) => [p.subnet, p]) ?? []);
  const peers: PeerStatus[] = [...d.peers.values()].map((l) => {
    const subnet = l.subnet ? formatCIDR(l.subnet) : undefined;
    const ipv6Subnet = l.ipv6Subnet ? formatCIDR(l.ipv6Subnet) : undefined;
    const counters = [subnet, ipv6Subnet].map((s) => (s ? bySubnet.get(s) : undefined)).filter((p): p is PeerStats => p !== undefined);
    const sum = (k: 'tx' | 'rx'): Traffic => counters.reduce((acc, p) => ({ packets: acc.packets + p[k].packets, bytes: acc.bytes + p[k].bytes }), { packets: 0, bytes: 0 });
    return {
      subnet,
      ipv6Subnet,
      publicIP: l.attrs.publicIP ? formatIP(l.attrs.publicIP) : undefined,
      publicIPv6: l.attrs.publicIPv6 ? formatIP(l.attrs.publicIPv6) : undefined,
      backendType: l.attrs.backendType,
      expiration: l.expiration.toISOString(),
      ...(engine ? { tx: sum('tx'), rx: sum('rx'), lastSeen: lastSeenOf(counters) } : {}),
    };
  });
  const expected = [...d.peers.values()].reduce((n, l) => n + (l.subnet ? 1 : 0) + (l.ipv6Subnet ? 1 : 0), 0);
  const ext = d.extIface;
  return {
    version: VERSION,
    pid: process.pid,
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    backend: backendStats.backend ?? d.config?.backend.type,
    mode: backendStats.mode,
    device: backendStats.device,
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
    replyPoll: engine?.replyPoll,
    threads: engine?.threads,
    vtep:
      backendStats.mode === 'userspace'
        ? {
            mac: backendStats.vtepMAC,
            vni: backendStats.vni,
            arpReplies: engine?.arpReplies ?? 0,
          }
        : undefined,
    capture: engine?.capture,
    watch: d.watchStatus(),
    wireguard: wireguardStatus(backendStats),
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
    if (req.method === 'GET' && req.url?.startsWith('/capture')) {
      serveCapture(req, res, d);
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

function refuse(res: ServerResponse, code: number, message: string): void {
  res.writeHead(code, { 'content-type': 'text/plain' });
  res.end(message);
}

/**
 * GET /capture?peer=..&reason=..&count=..: pcap bytes streamed on this connection until the count or
 * duration is reached, the client disconnects or the engine closes; packets and lost records follow
 * as HTTP trailers. One capture at a time per daemon (the engine has one tap): a second gets 409.
 */
function serveCapture(req: IncomingMessage, res: ServerResponse, d: Daemon): void {
  const src = d.network?.capture;
  if (!src) {
    refuse(res, 409, `capture needs flannelts' own data plane (the udp backend, the userspace VXLAN VTEP or userspace WireGuard); this daemon runs ${d.config?.backend.type ?? 'no backend yet'}`);
    return;
  }
  let r: CaptureRequest;
  try {
    r = fromQuery(new URL(req.url ?? '/', 'http://status').searchParams, src.reasons);
  } catch (e) {
    if (!(e instanceof CaptureOptionError)) throw e;
    refuse(res, 400, e.message);
    return;
  }
  const headers = {
    'content-type': r.format === 'pcap' ? 'application/vnd.tcpdump.pcap' : 'application/x-pcapng',
    'x-capture-device': src.device,
    trailer: 'x-capture-packets, x-capture-lost, x-capture-end',
  };
  const session = new CaptureSession(src, r, {
    write: (b) => {
      if (!res.headersSent) res.writeHead(200, headers);
      res.write(b);
    },
    backlog: () => res.writableLength,
  });
  try {
    session.start();
  } catch (e) {
    refuse(res, 409, `cannot start a capture: ${(e as Error).message}`);
    return;
  }
  log.info(`Capture started on ${src.device}: ${describeRequest(r)}`);
  res.on('close', () => session.finish('closed'));
  void session.done.then((s) => {
    log.info(`Capture ended (${s.end}): ${s.packets} packets, ${s.lost} lost`);
    if (s.end === 'closed') return;
    res.addTrailers({ 'x-capture-packets': String(s.packets), 'x-capture-lost': String(s.lost), 'x-capture-end': s.end });
    res.end();
  });
}

/** What to tell a flannelctl user whose connection to the status socket failed with this errno. */
export function socketHint(code: string | undefined): string {
  return code === 'ENOENT' ? ' (is flanneld running? give its -status-socket with --socket)' : code === 'EACCES' ? ' (run as root)' : '';
}

/** Client side for `flannelctl status`. */
export function fetchStatus(path: string, timeoutMs = 3000): Promise<StatusSnapshot> {
  return new Promise((resolve, reject) => {
    // agent: false, a connection per request: the global agent keeps connections alive and reuses them,
    // and one the daemon closed as idle (its 5 s keep-alive timeout) just before reuse fails with EPIPE.
    const req = request({ socketPath: path, path: '/status', method: 'GET', timeout: timeoutMs, agent: false }, (res) => {
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
      reject(new Error(`cannot read status from ${path}: ${e.code ?? e.message}${socketHint(e.code)}`));
    });
    req.end();
  });
}
