// Text rendering of a status snapshot for `flannelctl status` (pure, unit-tested).
import type { StatusSnapshot, Traffic } from '../status.js';
import type { WatchStatus } from '../subnet/watch-health.js';
import type { WireguardStatus } from '../status-wireguard.js';
import { wgDropReasons } from '../backend/wireguard/counters.js';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Rates between two snapshots, per peer subnet: packets/s and bits/s each way. */
export interface Rates {
  seconds: number;
  bySubnet: Map<string, { txPps: number; rxPps: number; txBps: number; rxBps: number }>;
}

export function computeRates(prev: StatusSnapshot, cur: StatusSnapshot, seconds: number): Rates {
  const bySubnet = new Map<string, { txPps: number; rxPps: number; txBps: number; rxBps: number }>();
  const key = (p: { subnet?: string; ipv6Subnet?: string }): string => p.subnet ?? p.ipv6Subnet ?? '';
  const before = new Map(prev.peers.map((p) => [key(p), p]));
  const zero: Traffic = { packets: 0, bytes: 0 };
  for (const p of cur.peers) {
    const b = before.get(key(p));
    const d = (now: Traffic | undefined, then: Traffic | undefined): Traffic => ({
      packets: Math.max(0, (now ?? zero).packets - (then ?? zero).packets),
      bytes: Math.max(0, (now ?? zero).bytes - (then ?? zero).bytes),
    });
    const tx = d(p.tx, b?.tx);
    const rx = d(p.rx, b?.rx);
    bySubnet.set(key(p), { txPps: tx.packets / seconds, rxPps: rx.packets / seconds, txBps: (tx.bytes * 8) / seconds, rxBps: (rx.bytes * 8) / seconds });
  }
  return { seconds, bySubnet };
}

const rate = (bps: number): string => (bps >= 1e9 ? `${(bps / 1e9).toFixed(2)} Gbit/s` : bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mbit/s` : `${(bps / 1e3).toFixed(1)} kbit/s`);

/** "never", "4s ago", "3m ago", "2h ago", or "-" when the backend has no data plane of ours. */
export function formatLastSeen(lastSeen: string | undefined, now: number): string {
  if (lastSeen === undefined) return '-';
  const at = Date.parse(lastSeen);
  if (Number.isNaN(at)) return lastSeen; // "never"
  const s = Math.max(0, Math.round((now - at) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

/** "watch (etcd): confirmed, last event 3s ago, last re-list 2m ago (14 lists); replaced: probe 1 (bound 15s)". */
export function formatWatch(w: WatchStatus, now: number): string {
  const replaced = Object.entries(w.replacements).filter(([, n]) => n > 0);
  return (
    `watch (${w.store}): ${w.confirmed ? 'confirmed' : 'NOT CONFIRMED'}, last event ${formatLastSeen(w.lastEvent, now)}, ` +
    `last re-list ${formatLastSeen(w.lastRelist, now)} (${w.relists} lists); ` +
    `replaced: ${replaced.length ? replaced.map(([k, n]) => `${k} ${n}`).join(', ') : 'never'} (liveness bound ${w.livenessSeconds}s)`
  );
}

/** The WireGuard devices and a table of their peers, as `wg show` would list them. */
export function formatWireguard(w: WireguardStatus, now: number): string {
  const out = [`wireguard devices: ${w.devices.map((d) => `${d.name} (${d.kind})`).join(', ') || 'none'}`];
  const rows = [['DEVICE', 'PEER', 'ENDPOINT', 'ALLOWED IPS', 'LATEST HANDSHAKE', 'RX', 'TX']];
  for (const p of w.peers) {
    rows.push([p.device, p.publicKey, p.endpoint ?? '(none)', p.allowedIPs.join(',') || '(none)', formatLastSeen(p.latestHandshake, now), humanBytes(p.rxBytes), humanBytes(p.txBytes)]);
  }
  out.push(w.peers.length ? table(rows) : 'no wireguard peers');
  if (w.counters) {
    const bad = Object.entries(wgDropReasons(w.counters));
    out.push(`wireguard drops: ${bad.length ? bad.map(([k, n]) => `${k}=${n}`).join(' ') : 'none'}`);
  }
  return out.join('\n');
}

export function formatStatus(s: StatusSnapshot, rates?: Rates, now = Date.now()): string {
  const out: string[] = [];
  out.push(`flanneld ${s.version} (flannelts), pid ${s.pid}, up ${s.uptimeSeconds}s`);
  const mode = s.mode ? (s.backend === 'wireguard' ? ` (Mode ${s.mode})` : ` (${s.mode} VTEP)`) : '';
  out.push(`backend ${s.backend ?? '?'}${mode}${s.device ? `, device ${s.device}` : ''}${s.mtu ? `, MTU ${s.mtu}` : ''}`);
  if (s.vtep) out.push(`VTEP MAC ${s.vtep.mac ?? '?'}, VNI ${s.vtep.vni ?? '?'}, ARP requests answered ${s.vtep.arpReplies}`);
  if (s.externalInterface) {
    const e = s.externalInterface;
    out.push(`interface ${e.name} (MTU ${e.mtu}), public ${[e.publicIP, e.publicIPv6].filter(Boolean).join(' ')}`);
  }
  if (s.lease) {
    out.push(`lease ${[s.lease.subnet, s.lease.ipv6Subnet].filter(Boolean).join(' ')}, expires ${s.lease.expiration}`);
  } else {
    out.push('lease: none yet');
  }
  if (s.offloads) {
    out.push(`offloads: ${Object.entries(s.offloads).map(([k, v]) => `${k}=${v ? 'on' : 'off'}`).join(' ') || 'none'}`);
  }
  if (s.replyPoll) {
    const r = s.replyPoll;
    out.push(r.windowUs > 0 ? `reply polling: up to ${r.windowUs} us after small sends; ${r.hits} answered, ${r.misses} ran out, ${r.skipped} skipped` : 'reply polling: off');
  }
  if (s.threads) {
    const t = s.threads;
    const now = t.current === 1 ? '1 (both directions)' : '2 (TUN side, socket side)';
    out.push(t.mode === 0 ? `data-plane threads: ${now}; automatic: split ${t.splits}x, merged ${t.merges}x` : `data-plane threads: ${now}; fixed`);
  }
  if (s.routes) out.push(`data-plane routes: ${s.routes.installed} installed / ${s.routes.expected} expected${s.routes.installed !== s.routes.expected ? '  <-- MISMATCH' : ''}`);
  out.push('');
  if (s.capture?.active) out.push('capture: running (flannelctl capture)');
  const header = ['PEER', 'PUBLIC IP', 'TX PKTS', 'TX BYTES', 'RX PKTS', 'RX BYTES', 'LAST SEEN'];
  if (rates) header.push('TX RATE', 'RX RATE');
  const rows = [header];
  for (const p of s.peers) {
    const key = p.subnet ?? p.ipv6Subnet ?? '';
    const row = [
      [p.subnet, p.ipv6Subnet].filter(Boolean).join(' '),
      [p.publicIP, p.publicIPv6].filter(Boolean).join(' '),
      p.tx ? String(p.tx.packets) : '-',
      p.tx ? humanBytes(p.tx.bytes) : '-',
      p.rx ? String(p.rx.packets) : '-',
      p.rx ? humanBytes(p.rx.bytes) : '-',
      formatLastSeen(p.lastSeen, now),
    ];
    if (rates) {
      const r = rates.bySubnet.get(key);
      row.push(r ? `${rate(r.txBps)} ${r.txPps.toFixed(0)} pps` : '-', r ? `${rate(r.rxBps)} ${r.rxPps.toFixed(0)} pps` : '-');
    }
    rows.push(row);
  }
  out.push(s.peers.length ? table(rows) : 'no peers');
  if (s.wireguard) out.push('', formatWireguard(s.wireguard, now));
  if (s.drops) {
    const nonzero = Object.entries(s.drops).filter(([, n]) => n > 0);
    out.push('', `drops: ${nonzero.length ? nonzero.map(([k, n]) => `${k}=${n}`).join(' ') : 'none'}`);
  }
  if (s.capture?.lost) out.push(`capture records lost to a full buffer: ${s.capture.lost}`);
  if (s.watch) out.push(formatWatch(s.watch, now));
  const c = s.daemon;
  out.push(`lease events ${c.leaseEvents}, renewals ${c.renewals} (errors ${c.renewErrors}), reconcile repairs ${c.reconcileRepairs} (errors ${c.reconcileErrors})`);
  return out.join('\n');
}
